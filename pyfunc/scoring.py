"""`mlflow models serve` answers 4xx for every body it cannot parse, as FastAPI does.

MLflow 3.17's scoring server decodes the request body with `json.loads` before the model sees it
and turns only JSONDecodeError / UnicodeDecodeError into its 400. A body nested too deeply
(RecursionError) or holding an integer past Python's 4,300-digit limit (ValueError) escapes the
handler as a plain 500. The model guards the server it is loaded into: the same 400, with a
one-line message that does not echo the body. Outside that server nothing changes.
"""

from __future__ import annotations

import sys

GUARD = "_ticketml_guard"


def guard_scoring_server() -> bool:
    """Wrap the scoring server's JSON decoder when it is loaded and not yet wrapped (True when
    this call wrapped it). Any other MLflow layout is left as it is."""
    server = sys.modules.get("mlflow.pyfunc.scoring_server")
    decode = getattr(server, "_decode_json_input", None)
    invalid = getattr(server, "MlflowInvalidInputException", None)
    if decode is None or invalid is None or getattr(decode, GUARD, False):
        return False

    def guarded(json_input):
        try:
            return decode(json_input)
        except RecursionError:
            raise invalid("request body JSON is nested too deeply") from None
        except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string..."
            raise invalid(
                f"request body is not JSON the server can read: {str(exc)[:200]}"
            ) from None

    setattr(guarded, GUARD, True)
    guarded.__wrapped__ = decode
    server._decode_json_input = guarded
    return True
