"""Every FHIR answer a test receives, validated twice.

``watch(app)`` hooks the app so that each JSON answer under /fhir is validated at once
with fhir.resources (pydantic models of R4B, which the resources telemed serves share
with R4: types, formats, cardinality) and kept; :func:`r4_errors` then checks the kept
answers against the official R4 core structure definitions, as FHIR.js (npm ``fhir``)
ships them, in one long-lived node process (unknown elements, required bindings).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from flask import Flask, request
from pydantic import ValidationError

JSON_TYPES = ("application/fhir+json", "application/json")
VALIDATOR_SCRIPT = Path(__file__).with_name("fhir_r4_validator.cjs")


class Watch:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.answers: list[tuple[str, dict[str, Any]]] = []


def watch(app: Flask) -> Watch:
    seen = Watch()

    def validate_answer(response):
        if not request.path.startswith("/fhir") or response.mimetype not in JSON_TYPES:
            return response
        if response.direct_passthrough or response.status_code == 304:
            return response
        where = f"{request.method} {request.full_path.rstrip('?')} -> {response.status_code}"
        try:
            body = json.loads(response.get_data(as_text=True))
            model = get_fhir_model_class(body["resourceType"])
            model.model_validate(body)
        except (ValueError, KeyError, TypeError) as error:
            seen.problems.append(f"{where}: not a FHIR resource ({error})")
        except ValidationError as error:
            seen.problems.append(f"{where}: {error.errors()[:3]}")
        else:
            seen.answers.append((where, body))
        return response

    app.after_request(validate_answer)
    return seen


class _R4Validator:
    """node running fhir_r4_validator.cjs: one resource per line in, its errors out."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(VALIDATOR_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=VALIDATOR_SCRIPT.parent.parent,
            env={**os.environ},
        )
        atexit.register(self.close)

    def errors(self, resource: dict[str, Any]) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(resource, ensure_ascii=False) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(
                "the R4 validator stopped: is the npm package 'fhir' installed (npm ci)?"
            )
        return json.loads(answer)["errors"]

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


_validator: _R4Validator | None = None


def r4_errors(answers: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The kept answers' errors against the R4 core structure definitions."""
    global _validator
    if not answers:
        return []
    if _validator is None:
        _validator = _R4Validator()
    found = []
    for where, body in answers:
        found.extend(f"{where}: {error}" for error in _validator.errors(body))
    return found
