"""GET /api/health: open to all, never a 5xx, honest about each dependency."""

import socket
import threading
from collections.abc import Iterator

import pytest

import operations.health


class FakeRedis:
    """A loopback server speaking just enough RESP for a client's ping.

    With `answer=False` it accepts connections and never replies, like a
    broker that hangs.
    """

    def __init__(self, *, answer: bool = True) -> None:
        self.answer = answer
        self.commands: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.clients: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.clients.append(conn)
            if self.answer:
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        stream = conn.makefile("rb")
        try:
            while line := stream.readline():
                if not line.startswith(b"*"):
                    continue
                args = []
                for _ in range(int(line[1:])):
                    size = int(stream.readline()[1:])
                    args.append(stream.read(size + 2)[:-2])
                command = args[0].upper()
                self.commands.append(command)
                if command == b"PING":
                    conn.sendall(b"+PONG\r\n")
                elif command == b"HELLO":
                    conn.sendall(
                        b"%3\r\n+server\r\n+redis\r\n+version\r\n+7.2.0\r\n"
                        b"+proto\r\n:3\r\n"
                    )
                else:
                    conn.sendall(b"+OK\r\n")
        except (OSError, ValueError):
            return

    def close(self) -> None:
        self.server.close()
        for conn in self.clients:
            conn.close()


@pytest.fixture
def fake_redis() -> Iterator[FakeRedis]:
    server = FakeRedis()
    yield server
    server.close()


@pytest.fixture
def hanging_redis() -> Iterator[FakeRedis]:
    server = FakeRedis(answer=False)
    yield server
    server.close()


@pytest.fixture
def locked(settings):
    settings.DEBUG = False
    settings.API_TOKEN = ""
    settings.CELERY_BROKER_URL = ""


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_health_without_a_broker(db, client, locked):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["registry"]["ok"] is True
    assert "0 projects" in body["registry"]["detail"]
    server = body["database_server"]
    assert server["embedded"] is True and server["running"] is True
    assert server["version"] == "18"
    assert body["broker"] == {
        "ok": True,
        "configured": False,
        "detail": "No CELERY_BROKER_URL: jobs run in threads of this process.",
    }


def test_health_pings_a_configured_broker(db, client, locked, settings, fake_redis):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{fake_redis.port}/0"
    body = client.get("/api/health").json()
    assert body["broker"]["ok"] is True and body["broker"]["configured"] is True
    assert body["ok"] is True
    assert b"PING" in fake_redis.commands


def test_unreachable_broker_is_reported_without_its_password(
    db, client, locked, settings
):
    settings.CELERY_BROKER_URL = f"redis://:hunter2@127.0.0.1:{unused_port()}/0"
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["registry"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert "refused" in body["broker"]["detail"].lower()
    assert "hunter2" not in response.content.decode()


def test_hanging_broker_times_out(
    db, client, locked, settings, monkeypatch, hanging_redis
):
    monkeypatch.setattr(operations.health, "BROKER_PING_TIMEOUT", 0.3)
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{hanging_redis.port}/0"
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["broker"]["ok"] is False
    assert "timeout" in response.json()["broker"]["detail"].lower()


def test_unusable_broker_url_is_reported_not_raised(db, client, locked, settings):
    settings.CELERY_BROKER_URL = "nosuchtransport://somewhere"
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["broker"]["ok"] is False


def test_external_database_server_is_not_probed_as_embedded(
    db, client, locked, settings
):
    settings.EMBEDDED_DATABASE = False
    server = client.get("/api/health").json()["database_server"]
    assert server["ok"] is True and server["embedded"] is False
    assert server["running"] is None
