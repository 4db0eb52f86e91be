"""Which counters a sign-in attempt spends, so that throttling cannot be turned against
other people.

- An attempt from a *trusted source* of the account (a browser holding the account's
  device cookie from an earlier successful sign-in, or an address the account signed in
  from before) spends only that source's own counter: strangers' failures, wherever
  they come from, never lock it out.
- Any other attempt spends the account's counter for untrusted sources and the counter
  of its client address. The address counter counts failures only (a success gives its
  unit back), so colleagues behind one address are not locked out by signing in.
- There is no global counter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    key: str
    limit: int
    # On success the account's counters start again; the address's only gets back the
    # unit this attempt took (its other failures still count).
    reset_on_success: bool


def sign_in_buckets(
    username: str,
    ip: str | None,
    *,
    device: str | None,
    known_address: bool,
    per_account: int,
    per_address: int,
) -> list[Bucket]:
    account = f"account:{username}"
    if device is not None:
        return [Bucket(f"{account}|device:{device}", per_account, True)]
    if known_address and ip is not None:
        return [Bucket(f"{account}|address:{ip}", per_account, True)]
    buckets = [Bucket(account, per_account, True)]
    if ip is not None:
        buckets.append(Bucket(f"address:{ip}", per_address, False))
    return buckets
