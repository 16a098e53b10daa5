"""The contract's errors: plain Python, so that the local server raises them without Airflow.

The provider re-raises them as its own exceptions, which derive from Airflow's (see
``airflow_provider_videoinfer.contract``); the local server answers them with HTTP 400.
"""

from __future__ import annotations


class ContractError(Exception):
    """Base class of the errors the contract raises."""


class InvalidInputError(ContractError, ValueError):
    """A value breaks the contract (a model, a sampling rate, a URL, a file name...).

    The message names the value, what is wrong with it and how to fix it.
    """


class InvalidAnswerError(ContractError, ValueError):
    """An answer of the service breaks the contract (a field missing or of the wrong type).

    The message names the answer and the field.
    """
