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
