"""report_dom.py - reads a `caviar report` page as Chromium rendered it
(--dump-dom) for tests/e2e/test_report.sh: the plots' points, heat-map
cells, bars and tables, by element id."""
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.svgs = {}      # id -> {"kind", "series": {name: [(x, y)]}, "cells", "bars", "lines"}
        self.tables = {}    # id -> [[cell text]]
        self.notes = []     # texts of p.note
        self.sections = []  # (class, id)
        self._svg = self._series = self._table = self._row = self._cell = None
        self._note = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "section":
            self.sections.append((cls, a.get("id")))
        if tag == "svg" and "plot" in cls:
            self._svg = {"kind": a.get("data-kind"), "series": {}, "cells": [], "bars": [],
                         "lines": 0}
            self.svgs[a["id"]] = self._svg
        elif self._svg is not None:
            if tag == "g" and "series" in cls:
                self._series = self._svg["series"].setdefault(a["data-series"], [])
            elif tag == "circle" and "pt" in cls:
                self._series.append((float(a["data-x"]), float(a["data-y"])))
            elif tag == "rect" and "cell" in cls.split():
                self._svg["cells"].append((int(a["data-i"]), int(a["data-j"]), float(a["data-v"])))
            elif tag == "rect" and "bar" in cls.split():
                self._svg["bars"].append((a["data-label"], float(a["data-v"])))
            elif tag == "polyline" and "pline" in cls:
                self._svg["lines"] += 1
            elif tag == "text" and "tick" in cls:
                self._cell = self._svg.setdefault("ticks", [])
                self._cell.append("")
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")
            self._cell = self._row
        elif tag == "p" and "note" in cls:
            self._note = ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None
        elif tag == "table":
            self._table = self._row = None
        elif tag in ("td", "th", "text"):
            self._cell = None
        elif tag == "p" and self._note is not None:
            self.notes.append(self._note)
            self._note = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[-1] += data
        if self._note is not None:
            self._note += data
