"""Choice rules compare timestamps of the RFC 3339 profile, fractional seconds included.

AWS: timestamps in Choice rules "must conform to RFC3339 profile ISO 8601", with an uppercase
``T`` between date and time and an uppercase ``Z`` when no numeric offset is given. RFC 3339
allows fractional seconds and numeric offsets, and Step Functions writes its own timestamps
with fractional seconds: the context object's ``$$.State.EnteredTime`` reads like
``2019-03-26T20:14:13.192Z``.
https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html
https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
https://www.rfc-editor.org/rfc/rfc3339#section-5.6

moto 5.2 parses Choice timestamps only as ``%Y-%m-%dT%H:%M:%SZ``: any value with fractional
seconds or an offset, its own ``EnteredTime`` included, is not a timestamp, so every
``Timestamp*`` comparison with it is false. The rotation state machine compares the time a
state was entered with the router's deadline (``$.RouterDeadline``): on moto alone a
single-user change made after the router stopped waiting would never be rolled back. The patch
replaces the parser only; the operators stay moto's.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from rotator.aws_local.patches import MotoPatch

#: date ``T`` time, optional fraction, ``Z`` or a numeric offset (uppercase T and Z, as AWS asks)
RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})")


def parse_timestamp(text: Any) -> datetime.datetime | None:
    """The instant ``text`` names (timezone-aware, UTC), or None when it is no such timestamp."""
    if not isinstance(text, str):
        return None
    match = RFC3339.fullmatch(text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]  # finer than microseconds: truncated
    try:
        moment = datetime.datetime.fromisoformat(
            f"{whole}.{micro}{'+00:00' if zone == 'Z' else zone}"
        )
    except ValueError:  # a month 13, a minute 61...
        return None
    return moment.astimezone(datetime.UTC)


class ChoiceComparesRfc3339Timestamps(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.is_operator import (
            IsTimestamp,
        )

        return [(IsTimestamp, "string_to_timestamp", staticmethod(parse_timestamp))]
