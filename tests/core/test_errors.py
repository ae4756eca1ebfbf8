"""The error tree: statuses, codes, the named field, and errors that pickle whole."""

from modelport.core import ContextLengthExceededError, ModelNotFoundError, RateLimitedError


def test_context_length_names_both_numbers() -> None:
    error = ContextLengthExceededError(prompt_tokens=9000, max_context=8192)
    assert "9000" in str(error) and "8192" in str(error)
    assert error.status_code == 400 and error.code == "context_length_exceeded"


def test_model_not_found_lists_known() -> None:
    error = ModelNotFoundError("gpt-9", ["b", "a"])
    assert error.known == ["a", "b"]
    assert "a, b" in str(error) and error.status_code == 404
    assert isinstance(error, LookupError)


def test_rate_limited_carries_retry_after() -> None:
    assert RateLimitedError("slow down", retry_after=2.5).retry_after == 2.5


def test_every_error_survives_pickling_with_its_fields() -> None:
    # Ray replicas send errors to the ingress by pickle: type, status and fields must survive.
    import pickle

    from modelport.core import BadRequestError, ModelUnavailableError, UpstreamUnavailableError

    for error in (
        ModelNotFoundError("gpt-9", ["a"]),
        ContextLengthExceededError(prompt_tokens=9000, max_context=8192, max_tokens=10),
        BadRequestError("must be positive", param="max_tokens", code="bad_max"),
        RateLimitedError("slow down", retry_after=2.5),
        UpstreamUnavailableError("down", status_code=503),
        ModelUnavailableError("m", "no file"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (copy.message, copy.status_code, copy.code, str(copy)) == (
            error.message,
            error.status_code,
            error.code,
            str(error),
        )
        assert copy.__dict__ == error.__dict__
