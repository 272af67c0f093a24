"""Excel dropdowns for a template's columns, from a hidden `lists` sheet of choices (a list typed inline
in a validation is limited to 255 characters). Typing something else stays allowed: the readers of
`common.spreadsheets.cells` read what people type, and every choice back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from common.spreadsheets.sheets import Columns

DROPDOWN_ROWS = 5000  # rows of a data sheet the dropdowns cover


def add_dropdowns(
    workbook: Any,
    sheet: Any,
    columns: Columns,
    choices: Mapping[str, Sequence[str]],
    prompts: Mapping[str, str] | None = None,
) -> None:
    """A dropdown on each column of `sheet` named in `choices` (field → entries), with its prompt (≤ 250
    characters shown); the entries go to the workbook's hidden `lists` sheet, one column each."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    if "lists" in workbook.sheetnames:
        lists = workbook["lists"]
        first = lists.max_column + 1
    else:
        lists = workbook.create_sheet("lists")
        lists.sheet_state = "hidden"
        first = 1
    for index, (name, values) in enumerate(choices.items(), start=first):
        letter = get_column_letter(index)
        for row, value in enumerate(values, start=1):
            lists.cell(row=row, column=index, value=value)
        validation = DataValidation(
            type="list", formula1=f"=lists!${letter}$1:${letter}${len(values)}", allow_blank=True
        )
        validation.showErrorMessage = False  # a list of countries, or a name typed by hand, is fine too
        if prompts and name in prompts:
            validation.promptTitle, validation.prompt = name, prompts[name][:250]
            validation.showInputMessage = True
        column = get_column_letter(columns.fields.index(name) + 1)
        validation.add(f"{column}2:{column}{DROPDOWN_ROWS + 1}")
        sheet.add_data_validation(validation)
