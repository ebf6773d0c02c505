"""What a task may be asked, checked by the same code wherever it is asked: the command line, the server, Python.

One pydantic model per task holds its limits (top-k, beam, texts, windows, rates); `checked(Model, ...)`
builds one or raises a `TaskRequestError` whose one line names the field. The CLI turns it into
`error: ...` (exit 2), the server into a 422 answer. Blank labels and options are dropped (a form's
empty field is not a class name); a blank question, query or search text is refused.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import VljepaError

MAX_BEAM = 8
MAX_SEARCH_K = 100
MAX_SEARCH_TEXT = 500


class TaskRequestError(VljepaError, ValueError):
    """A task asked with a value outside its limits; the message names the field."""


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _names(values: list[str]) -> list[str]:
    return [value.strip() for value in values if value.strip()]


Text = Annotated[str, AfterValidator(_text)]
Names = Annotated[list[str], AfterValidator(_names)]
Beam = Annotated[int, Field(ge=1, le=MAX_BEAM)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClassifyRequest(Request):
    labels: Names
    top: Annotated[int, Field(ge=1)] = 5

    @model_validator(mode="after")
    def _some_labels(self) -> ClassifyRequest:
        if not self.labels:
            raise ValueError("labels: no class names")
        return self


class AskRequest(Request):
    question: Text
    options: Names = []
    beam: Beam = 1


class ClipWindow(Request):
    start: Seconds | None = None
    end: Seconds | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ClipWindow:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end: must be after start ({self.start:g} s), got {self.end:g} s")
        return self


class CaptionRequest(ClipWindow):
    beam: Beam = 1


class SearchRequest(Request):
    text: Annotated[Text, Field(max_length=MAX_SEARCH_TEXT)]
    k: Annotated[int, Field(ge=1, le=MAX_SEARCH_K)] = 10


class StreamRequest(Request):
    hz: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = None
    threshold: Annotated[float, Field(gt=0, le=2, allow_inf_nan=False)] | None = None
    window: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 2.0
    stride: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.5


R = TypeVar("R", bound=Request)


def one_line(error: ValidationError) -> str:
    """The first problem of a pydantic error as `field: message`."""
    problem = error.errors()[0]
    field = ".".join(str(part) for part in problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    value = problem.get("input")
    shown = f", got {value!r}" if field and isinstance(value, (str, int, float)) else ""
    return f"{field}: {message}{shown}" if field else message


def checked(model: type[R], **values) -> R:
    """`model(**values)`, or a `TaskRequestError` naming the first field out of its limits."""
    try:
        return model(**values)
    except ValidationError as error:
        raise TaskRequestError(one_line(error)) from None
