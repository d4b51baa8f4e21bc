"""The report's core sections: each turns a :class:`~pgvbench.results.Results` into blocks.

A section depends on the block model (report.document), number formatting (report.fmt),
the results records and the analysis only: never on the entry point (report.render),
the writers or the figures code. Images are drawn by the entry point and handed in.
"""
