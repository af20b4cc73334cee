import jwt
import pytest

from gateway.auth import Unauthorized, mint_token, verify_token

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"


def test_a_minted_token_verifies_for_its_player_only() -> None:
    token = mint_token(SECRET, "alice", 60)
    verify_token(SECRET, token, "alice")
    with pytest.raises(Unauthorized, match="another player"):
        verify_token(SECRET, token, "bob")


OTHER = "another-secret-that-is-long-enough-for-hs256"


@pytest.mark.parametrize("token", [None, "", "garbage", mint_token(OTHER, "alice", 60),
                                   jwt.encode({"sub": "alice", "exp": 1}, SECRET, algorithm="HS256"),
                                   jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")])
def test_bad_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(Unauthorized):
        verify_token(SECRET, token, "alice")


def test_placeholder_secret_is_refused_in_production() -> None:
    from persistence.settings import Settings

    with pytest.raises(ValueError, match="TOKEN_SECRET"):
        Settings(environment="production", token_secret="changeme")
