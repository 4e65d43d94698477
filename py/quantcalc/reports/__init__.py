"""Results as bytes: CSV/JSON/PDF tables (tables), matplotlib figures on the Agg backend, never
pyplot (figures), A4 pages (pdf_pages) and the font list Pyodide ships (fontcache).

May import everything below it (`errors`, `schema`, `formats`, `engine`, `readers`); never
scan, plan or the facade.
"""
