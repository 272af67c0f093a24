"""Spreadsheets people fill in, for every service's uploader or importer: reading a sheet by its bilingual
headers (`sheets`), its cells as people type them (`cells`: dates, 是/否, countries, provinces, a
producer's vocabulary), the rejected-rows report in the user's language (`reports`), and the templates'
dropdowns (`dropdowns`)."""

from common.spreadsheets.cells import (
    CellError,
    Vocabulary,
    country_choices,
    integer,
    items,
    province_choices,
    read_bool,
    read_countries,
    read_country,
    read_date,
    read_list,
    read_province,
    text,
)
from common.spreadsheets.dropdowns import DROPDOWN_ROWS, add_dropdowns
from common.spreadsheets.reports import (
    REPORT_ENCODING,
    RejectedRows,
    describe,
    problem_text,
    system_language,
)
from common.spreadsheets.sheets import Columns, SheetError, blank, read_sheet

__all__ = [
    "DROPDOWN_ROWS",
    "REPORT_ENCODING",
    "CellError",
    "Columns",
    "RejectedRows",
    "SheetError",
    "Vocabulary",
    "add_dropdowns",
    "blank",
    "country_choices",
    "describe",
    "integer",
    "items",
    "problem_text",
    "province_choices",
    "read_bool",
    "read_countries",
    "read_country",
    "read_date",
    "read_list",
    "read_province",
    "read_sheet",
    "system_language",
    "text",
]
