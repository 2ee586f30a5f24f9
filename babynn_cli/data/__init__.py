"""Data in and tables out: the only package that imports pandas (and pyarrow).

- `sources`: what DATA names (a file, '-', sample:NAME, a folder or a glob of parts), opened; the
  one place pandas opens a file, its errors as one line.
- `columns`: the header, the features and targets, and the checks each block of rows passes.
- `read`: DATA whole in memory (`load`, `load_for_prediction`), and `table_csv`.
- `parallel`: a large plain file parsed in parts on every core.
- `stream`: DATA in blocks at each pass, and the stream's row file.
"""
