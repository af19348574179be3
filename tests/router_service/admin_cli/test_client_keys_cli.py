"""`switchboard admin client-keys issue|list|revoke` against a real router: `issue` prints the
new key once (it then works as its client), `list` shows it by id and fingerprint only, `revoke`
refuses it from then on; a second revoke, or an unknown client, is not found (exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import StartRouter
from tests.router_service.admin_cli.shell import Shell, ops_shell
from tests.router_service.auth.helpers import bearer, chat

pytestmark = pytest.mark.timeout(60)


async def test_issue_list_revoke(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    shell = await ops_shell(fake, start_router, tmp_path)
    issued = await shell("client-keys", "issue", "alice", "--label", "ci", "--ttl", "3600")
    assert (issued.code, issued.err) == (0, "")
    key = issued.out.splitlines()[0]
    assert await shell.router.stub.Chat(chat(), metadata=bearer(key))  # acts as alice

    listed = await shell("client-keys", "list")
    as_json = await shell("client-keys", "list", "--client", "alice", "--json")
    assert key not in listed.out + as_json.out
    (only,) = json.loads(as_json.out)["keys"]
    assert (only["client"], only["label"], only["fingerprint"]) == ("alice", "ci", fingerprint(key))
    row = listed.row(only["id"])
    assert row[1:4] == ["alice", "ci", fingerprint(key)]
    assert row[-1] == "in 1h"
    await clients_show_the_keys_as_json_does(shell, key)

    revoked = await shell("client-keys", "revoke", only["id"])
    assert revoked.code == 0 and revoked.out.startswith(f"{only['id']} ({fingerprint(key)})")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shell.router.stub.Chat(chat(), metadata=bearer(key))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert (await shell("client-keys", "list")).out == "no issued client keys\n"
    assert (await shell("client-keys", "revoke", only["id"])).code == 4
    assert (await shell("client-keys", "issue", "nobody")).code == 4


async def clients_show_the_keys_as_json_does(shell: Shell, issued: str) -> None:
    """`clients` lists each client's keys by fingerprint (an issued one with its id and label),
    the same keys as `clients --json`, and never a key itself."""
    shown, as_json = await shell("clients"), await shell("clients", "--json")
    assert issued not in shown.out + as_json.out
    (alice,) = [c for c in json.loads(as_json.out)["clients"] if c["name"] == "alice"]
    rows = {cells[1]: cells for cells in shown.rows("alice") if cells[1].startswith("fp_")}
    assert sorted(rows) == sorted(key["fingerprint"] for key in alice["keys"])
    assert len(rows) == 2  # the configured key and the issued one
    assert rows[fingerprint(issued)][2:] == [alice["keys"][1]["id"], "ci", "in 1h"]
    (configured,) = [cells for fp, cells in rows.items() if fp != fingerprint(issued)]
    assert configured[2:] == ["configured", "-", "never"]


async def test_a_key_issued_for_years_shows_when_it_expires(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    """Not `until changed`, the words of a key disabled by hand (ten years out): it expires
    without anyone changing it."""
    shell = await ops_shell(fake, start_router, tmp_path)
    two_years = str(2 * 365 * 86400 + 3 * 3600)
    issued = await shell("client-keys", "issue", "alice", "--label", "ci", "--ttl", two_years)
    assert issued.code == 0

    listed = await shell("client-keys", "list")
    (row,) = [cells for cells in listed.lines()[1:]]

    assert row[-1] == "in 730d 3h"
    assert issued.lines()[-1][-1] == "in 730d 3h"


async def test_listing_the_keys_of_a_client_not_configured_is_not_found(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    """A typo (`--client alcie`) is said so, as `issue` says it: not `no issued client keys`,
    which reads as a client that has none."""
    shell = await ops_shell(fake, start_router, tmp_path)
    assert (await shell("client-keys", "issue", "alice")).code == 0

    typo = await shell("client-keys", "list", "--client", "alcie")
    mine = await shell("client-keys", "list", "--client", "ops")

    assert (typo.code, typo.out) == (4, "")
    assert typo.err == "switchboard admin: not found: No client of that name in auth.clients.\n"
    assert (mine.code, mine.out) == (0, "no issued client keys\n")  # configured: none issued
