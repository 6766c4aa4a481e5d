"""What a partial (or whole) commit or release takes from a reservation's
lines: decided from the lines as read, before anything is written."""
from __future__ import annotations

from .commands import LinePart
from .errors import UserError, invalid
from .models import ReservationLineView


def take_from(lines: tuple[ReservationLineView, ...], parts: tuple[LinePart, ...] | None
              ) -> list[tuple[ReservationLineView, int]] | UserError:
    """(line, quantity) pairs, in line order: every unit still held when `parts`
    is None, else what each part names (its whole holding when it gives no
    quantity). INVALID_INPUT naming the part for an unknown line number or a
    quantity above what the line still holds."""
    if parts is None:
        return [(line, line.held) for line in lines if line.held > 0]
    by_number = {line.line_no: line for line in lines}
    taken = []
    for i, part in enumerate(parts):
        line = by_number.get(part.line_number)
        if line is None:
            return invalid(f"lines[{i}].lineNumber",
                           f"the reservation has no line {part.line_number}")
        quantity = line.held if part.quantity is None else part.quantity
        if quantity > line.held or quantity == 0:
            return invalid(f"lines[{i}].quantity",
                           f"line {part.line_number} holds {line.held}, not {quantity}")
        taken.append((line, quantity))
    return sorted(taken, key=lambda t: t[0].line_no)
