"""The local development broker: one Apache Kafka 4.x node in KRaft mode.

Sijil starts Kafka itself from Maven Central's jars (there is no Docker engine on the
project's machines): ``pom.xml`` lists them, ``resolve_jars()`` fetches them once with
Maven into a cache folder, and ``LocalBroker`` formats a data folder, writes
``server.properties`` and runs ``java ... kafka.Kafka`` detached, its output going to a
log file and its process id to a pid file, so that ``sijil kafka down`` from another
process can stop it.

Everything lives under ``<home>/kafka/`` (home is ``SIJIL_HOME``)::

    lib/                the jars (unless SIJIL_KAFKA_LIB names another folder)
    data/               the broker's log.dirs (KRaft metadata and topic data)
    server.properties   rewritten before each start from the ports given
    broker.log          the broker's stdout and stderr (slf4j-simple), appended
    broker.pid          the running broker's process id

Only the standard library here, except the readiness probe, which asks the broker
through kafka-python's admin client (imported when needed).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domain.settings import Settings

DEFAULT_POM = Path(__file__).resolve().parents[1] / "pom.xml"
STAMP_NAME = ".pom.sha256"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DEFAULT_HEAP = "512m"
MAVEN_TIMEOUT = 900.0
JAVA_TOOL_TIMEOUT = 120.0
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


class BrokerError(RuntimeError):
    """The local broker could not be set up, started, reached or stopped."""


class BrokerUnavailable(BrokerError):
    """A tool the local broker needs (java, or mvn for a cold jar cache) is missing."""


# tools -------------------------------------------------------------------------------
def find_java() -> str:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise BrokerUnavailable(
            "no `java` on PATH (and JAVA_HOME unset): the local Kafka broker needs Java 17+; "
            "on Debian: `apt-get install -y openjdk-17-jre-headless`"
        )
    return found


def find_maven() -> str:
    found = shutil.which("mvn")
    if not found:
        raise BrokerUnavailable(
            "no `mvn` on PATH: Maven fetches the Kafka jars the first time (then they are "
            "cached); on Debian: `apt-get install -y maven`"
        )
    return found


# the jar cache -----------------------------------------------------------------------
def pom_digest(pom: Path = DEFAULT_POM) -> str:
    try:
        return hashlib.sha256(pom.read_bytes()).hexdigest()
    except OSError as exc:
        raise BrokerError(f"cannot read the broker's pom ({pom}): {exc}") from exc


def _cached_jars(lib: Path, digest: str) -> list[Path]:
    """The cached jars when the stamp matches the pom, else an empty list."""
    try:
        stamp = (lib / STAMP_NAME).read_text().strip()
    except OSError:
        return []
    if stamp != digest:
        return []
    return sorted(lib.glob("*.jar"))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock: concurrent resolves or starts wait for each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_jars(lib: Path, pom: Path = DEFAULT_POM) -> list[Path]:
    """The broker's jars in ``lib``, fetched with Maven unless already there for this pom.

    The jars are copied into a staging folder beside ``lib`` and swapped in whole, with a
    stamp holding the pom's SHA-256: an interrupted resolve leaves no half-filled cache,
    and an edited pom replaces the old jars instead of mixing versions on the classpath.
    """
    lib = lib.resolve()
    digest = pom_digest(pom)
    if jars := _cached_jars(lib, digest):
        return jars
    with _file_lock(lib.parent / f".{lib.name}.lock"):
        if jars := _cached_jars(lib, digest):  # another process resolved meanwhile
            return jars
        mvn = find_maven()
        staging = Path(tempfile.mkdtemp(prefix=f".{lib.name}-", dir=lib.parent))
        try:
            command = [
                mvn, "-q", "-B", "-f", str(pom),
                "dependency:copy-dependencies", f"-DoutputDirectory={staging}",
            ]  # fmt: skip
            try:
                result = subprocess.run(
                    command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT,
                    stdin=subprocess.DEVNULL, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                raise BrokerError(f"Maven took more than {MAVEN_TIMEOUT:.0f} s") from exc
            if result.returncode != 0 or not any(staging.glob("*.jar")):
                output = _tail(f"{result.stdout}\n{result.stderr}", 30)
                raise BrokerError(
                    f"Maven could not fetch the Kafka jars (exit {result.returncode}):\n"
                    f"$ {' '.join(command)}\n{output}"
                )
            (staging / STAMP_NAME).write_text(digest + "\n")
            staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared
            retired = None
            if lib.exists():
                retired = Path(tempfile.mkdtemp(prefix=f".{lib.name}-old-", dir=lib.parent))
                lib.rename(retired / lib.name)
            staging.rename(lib)
            if retired is not None:
                shutil.rmtree(retired, ignore_errors=True)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return sorted(lib.glob("*.jar"))


# sockets and processes ---------------------------------------------------------------
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@contextlib.contextmanager
def _quiet_kafka_client_logs() -> Iterator[None]:
    """kafka-python logs each refused connection; a readiness probe expects some."""
    logger = logging.getLogger("kafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    healthy: bool
    bootstrap: str
    formatted: bool
    home: Path
    log_file: Path


class LocalBroker:
    """One KRaft node (broker and controller) under ``<home>/kafka``, on loopback ports.

    ``up()`` does everything (jars, format, start, readiness) and does nothing when the
    broker is already running and answering. ``down()``/``stop()`` stops it.
    """

    def __init__(
        self,
        home: Path,
        *,
        port: int = 19092,
        controller_port: int = 19093,
        lib: Path | None = None,
        host: str = "127.0.0.1",
        heap: str = DEFAULT_HEAP,
        pom: Path = DEFAULT_POM,
    ) -> None:
        self.root = (Path(home) / "kafka").resolve()
        self.lib = (lib or self.root / "lib").resolve()
        self.port = port
        self.controller_port = controller_port
        self.host = host
        self.heap = heap
        self.pom = pom
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        return cls(
            settings.home,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            lib=settings.kafka_lib,
        )

    # paths -------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def properties_file(self) -> Path:
        return self.root / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.root / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    # set-up ------------------------------------------------------------------------
    def resolve_jars(self) -> list[Path]:
        return resolve_jars(self.lib, self.pom)

    def server_properties(self) -> str:
        """A single dev node: replication factor 1 everywhere, nothing ever deleted."""
        plain = f"PLAINTEXT://{self.host}:{self.port}"
        controller = f"CONTROLLER://{self.host}:{self.controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            "listeners": f"{plain},{controller}",
            "advertised.listeners": f"{plain},{controller}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # topics: Sijil creates its own (consumers/topics.py), with explicit configs
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "log.retention.ms": "-1",
            "log.retention.bytes": "-1",
            "log.cleanup.policy": "delete",
            # internal topics on one node; fewer partitions than the default 50 start faster
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # consumer groups form at once instead of waiting 3 s for more members
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        lines = [
            "# Written by consumers/broker.py before each start; edits are overwritten.",
            *(f"{key}={value}" for key, value in settings.items()),
        ]
        return "\n".join(lines) + "\n"

    def write_properties(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        staged = self.properties_file.with_suffix(".properties.tmp")
        staged.write_text(self.server_properties())
        staged.replace(self.properties_file)

    def is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def _java(self, *args: str, timeout: float = JAVA_TOOL_TIMEOUT) -> str:
        """Run a Kafka tool class on the cached classpath; its stdout, or a BrokerError."""
        # a short-lived tool: the quick JIT tier and the serial collector start faster
        quick = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m"]
        command = [find_java(), *quick, "-cp", f"{self.lib}/*", *args]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout,
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"{' '.join(args[:2])} took more than {timeout:.0f} s") from exc
        if result.returncode != 0:
            raise BrokerError(
                f"`{' '.join(args)}` failed (exit {result.returncode}):\n"
                f"{_tail(result.stdout + result.stderr, 30)}"
            )
        return result.stdout

    def format_storage(self) -> bool:
        """Format the data folder for a new single-node cluster; False if already done."""
        if self.is_formatted():
            return False
        self.resolve_jars()
        self.write_properties()
        output = self._java(STORAGE_TOOL, "random-uuid")
        ids = [line.strip() for line in output.splitlines() if _CLUSTER_ID.match(line.strip())]
        if not ids:
            raise BrokerError(f"StorageTool random-uuid printed no cluster id:\n{output}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._java(
            STORAGE_TOOL, "format", "--standalone",
            "-t", ids[-1], "-c", str(self.properties_file),
        )  # fmt: skip
        return True

    # the process -------------------------------------------------------------------
    def _is_our_broker(self, pid: int) -> bool:
        """The pid is alive and runs kafka.Kafka with this home's server.properties."""
        if self._proc is not None and self._proc.pid == pid and self._proc.poll() is not None:
            return False  # our own child exited (and is now reaped)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        proc = Path(f"/proc/{pid}")
        if not Path("/proc/self").exists():  # no procfs: trust the signal check
            return True
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            return False
        if state in ("Z", "X"):  # exited, not yet reaped
            return False
        if argv == [b""]:  # between fork and exec (or exec'ing): not yet readable
            return self._proc is not None and self._proc.pid == pid
        # another program if the pid was reused since the pid file was written
        return MAIN_CLASS.encode() in argv and str(self.properties_file).encode() in argv

    def pid(self) -> int | None:
        """The running broker's process id, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._is_our_broker(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def is_healthy(self, timeout: float = 5.0) -> bool:
        """The port answers, and an admin client can describe the cluster and list topics."""
        if not port_answers(self.host, self.port):
            return False
        from kafka.admin import KafkaAdminClient  # the one non-stdlib need

        millis = int(timeout * 1000)
        with _quiet_kafka_client_logs():
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap,
                    client_id="sijil-broker-probe",
                    request_timeout_ms=millis,
                    bootstrap_timeout_ms=millis,
                )
            except Exception:
                return False
            try:
                cluster = admin.describe_cluster()
                admin.list_topics()
                return bool(cluster.get("brokers"))
            except Exception:
                return False
            finally:
                with contextlib.suppress(Exception):
                    admin.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            with self.log_file.open("rb") as handle:
                handle.seek(max(0, self.log_file.stat().st_size - 64 * 1024))
                return _tail(handle.read().decode(errors="replace"), lines)
        except OSError:
            return "(no broker log yet)"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until the broker answers; a BrokerError with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            pid = self.pid()
            if pid is None:
                raise BrokerError(
                    f"the broker exited during start-up; last lines of {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            if self.is_healthy(timeout=min(5.0, max(1.0, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"the broker (pid {pid}) did not answer at {self.bootstrap} within "
                    f"{timeout:.0f} s (if it was started with other ports, run "
                    f"`sijil kafka down` first); last lines of {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.25)

    def start(self, *, wait: bool = True, timeout: float = READY_TIMEOUT) -> bool:
        """Start the broker detached; False when it was already running (then only waits)."""
        if self.pid() is not None:
            if wait:
                self.wait_ready(timeout)
            return False
        if not self.is_formatted():
            raise BrokerError(f"{self.data_dir} is not formatted: call format_storage() first")
        for port in (self.port, self.controller_port):
            if port_answers(self.host, port):
                raise BrokerError(
                    f"port {self.host}:{port} is taken by another process; choose other "
                    "ports (SIJIL_KAFKA_PORT, SIJIL_KAFKA_CONTROLLER_PORT)"
                )
        java = find_java()
        self.resolve_jars()
        self.write_properties()
        command = [
            java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
            "-Dorg.slf4j.simpleLogger.showThreadName=false",
            "-Dorg.slf4j.simpleLogger.showShortLogName=true",
            "-cp", f"{self.lib}/*",
            MAIN_CLASS, str(self.properties_file),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            log.write(f"\n=== sijil: starting {' '.join(command)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # survives the command line that started it
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        if wait:
            try:
                self.wait_ready(timeout)
            except BrokerError:
                self.stop()
                raise
        return True

    def up(self, timeout: float = READY_TIMEOUT) -> bool:
        """Jars, format, start, ready. False when it was already running and healthy."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.root / ".up.lock"):
            if self.pid() is not None:
                self.wait_ready(timeout)
                return False
            self.resolve_jars()
            self.format_storage()
            return self.start(wait=True, timeout=timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` s. The pid stopped, or None if none ran."""
        pid = self.pid()
        if pid is None and self._proc is not None and self._proc.poll() is None:
            pid = self._proc.pid  # our own child, whatever its pid file says
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 5.0)
        self.pid_file.unlink(missing_ok=True)
        return pid

    down = stop

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._is_our_broker(pid):
                return True
            time.sleep(0.1)
        return not self._is_our_broker(pid)

    def status(self) -> BrokerStatus:
        pid = self.pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            healthy=pid is not None and self.is_healthy(),
            bootstrap=self.bootstrap,
            formatted=self.is_formatted(),
            home=self.root,
            log_file=self.log_file,
        )
