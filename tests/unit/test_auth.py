import jwt
import pytest

from podium.gateway.auth import Unauthorized, mint_token, verify_token

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
    from podium.settings import Settings

    with pytest.raises(ValueError, match="TOKEN_SECRET"):
        Settings(environment="production", token_secret="changeme")


def test_tokens_of_another_issuer_or_audience_are_refused() -> None:
    from podium.gateway.auth import TokenKeys

    keys = TokenKeys(SECRET, issuer="studio-a", audience="podium")
    verify = keys.verify(keys.mint("alice"), "alice")
    assert (verify["iss"], verify["aud"]) == ("studio-a", "podium")
    for token in (mint_token(SECRET, "alice", 60),  # issuer podium
                  mint_token(SECRET, "alice", 60, issuer="studio-a", audience="elsewhere"),
                  jwt.encode({"sub": "alice", "exp": 2**40}, SECRET, algorithm="HS256")):  # neither claim
        with pytest.raises(Unauthorized):
            keys.verify(token, "alice")


def test_during_a_rotation_old_and_new_secrets_verify_and_only_the_new_one_signs() -> None:
    from podium.gateway.auth import TokenKeys

    old_keys = TokenKeys(OTHER)
    rotating = TokenKeys(SECRET, previous=(OTHER,))
    old_token = old_keys.mint("alice")
    assert rotating.verify(old_token, "alice")["sub"] == "alice"
    new_token = rotating.mint("alice")
    assert TokenKeys(SECRET).verify(new_token, "alice")["sub"] == "alice"
    with pytest.raises(Unauthorized):
        old_keys.verify(new_token, "alice")  # minted with the new secret only
    with pytest.raises(Unauthorized):
        TokenKeys(SECRET).verify(old_token, "alice")  # the rotation is over: the old secret is gone
    with pytest.raises(Unauthorized, match="another player"):
        rotating.verify(old_token, "bob")


def test_a_refresh_carries_the_vouching_forward_until_refresh_max() -> None:
    import time

    from podium.gateway.auth import TokenKeys

    keys = TokenKeys(SECRET, ttl_s=3600, refresh_max_s=86_400)
    first = keys.verify(keys.mint("alice"), "alice")
    again = keys.verify(keys.refresh(first), "alice")
    assert again["auth_time"] == first["auth_time"] and again["exp"] >= first["exp"]
    with pytest.raises(Unauthorized, match="too old"):
        keys.refresh(first, now=time.time() + 86_401)


def test_settings_give_the_keys_of_a_rotation(tmp_path) -> None:
    from podium.gateway.auth import token_keys
    from podium.settings import Settings

    keys = token_keys(Settings(data_dir=tmp_path, token_secret=SECRET, token_previous_secrets=f" {OTHER} ,,",
                               token_issuer="studio-a"))
    assert (keys.secret, keys.previous, keys.issuer) == (SECRET, (OTHER,), "studio-a")
