"""Everything babynn shows a person: the only package that imports rich (and matplotlib).

`console` carries words and tables to the terminal (stdout for data, stderr for the rest) and
shows progress; `words` holds the sentences; each command's report module has one face — `header`
(what is about to run), `show` (its tables and pictures), `as_json`, `columns` (CSV), `plot_png` —
in `fit`, `sweep`, `compare` and `predict`; `plot` draws in the terminal and to PNG.
"""
