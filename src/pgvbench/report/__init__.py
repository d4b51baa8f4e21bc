"""Reports of a run: figures (PNG), Markdown and a self-contained HTML page.

render.py (render_report) assembles the document from the core sections in sections/
and each study's section (studies/registry.py); document.py is the block model,
markdown.py and html.py its writers, fmt.py and figures.py the shared formatting.
Nothing is re-exported here: studies import the block model, and render.py imports them.
"""
