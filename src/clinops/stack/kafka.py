"""A single-node KRaft Kafka broker run from the Maven Central jars, on fixed loopback ports across restarts."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from confluent_kafka.cimpl import NewTopic

from clinops.data.schemas import TOPIC_BY_EVENT_TYPE
from clinops.stack.fetch import KAFKA_VERSION, kafka_libs
from clinops.stack.process import READY_TIMEOUT_S, ManagedProcess, StackError, free_port, log_tail

# Every topic of the platform (DESIGN §6): the event streams, then what the model server and monitors write.
STACK_TOPICS: tuple[str, ...] = (*TOPIC_BY_EVENT_TYPE.values(), "predictions", "outcomes", "drift-results")
DEFAULT_PARTITIONS = 3
PROBE_TIMEOUT_S = 2.0
FORMAT_TIMEOUT_S = 120

log = logging.getLogger(__name__)
# The admin client reports every refused connection while the broker starts or restarts: expected, so kept out of a
# terminal unless the application routes this logger somewhere.
log.addHandler(logging.NullHandler())


def _cluster_id() -> str:
    # Kafka's Uuid text form: url-safe base64 of 16 bytes, unpadded; it never starts with '-' (read as a flag).
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError("java not found: Kafka needs a Java 17+ runtime on PATH or in JAVA_HOME")
    return found


def _two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


class KafkaBroker:
    """Broker and controller in one JVM; its ports and log dirs stay fixed for its lifetime, across restarts.

    ``run_dir`` holds ``server.properties``, the data (``data/``), the broker's Log4j log (``server.log``) and the
    JVM's console output (``kafka.log``).
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        topics: Iterable[str] = STACK_TOPICS,
        partitions: int = DEFAULT_PARTITIONS,
        version: str = KAFKA_VERSION,
        heap: str = "1g",
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.version = version
        self.heap = heap
        self.partitions = partitions
        self.port, self.controller_port = _two_free_ports()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.data_dir = self.run_dir / "data"
        self.config_file = self.run_dir / "server.properties"
        self.log4j_file = self.run_dir / "log4j2.properties"
        self.server_log = self.run_dir / "server.log"
        self.console_log = self.run_dir / "kafka.log"
        self.topics: dict[str, int] = dict.fromkeys(topics, partitions)
        self._process: ManagedProcess | None = None
        self._admin: AdminClient | None = None

    def __repr__(self) -> str:
        return f"KafkaBroker({self.bootstrap!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.partitions),
            # One node: every internal topic has exactly one replica.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A lone consumer group member need not wait for peers that will never join.
            "group.initial.rebalance.delay.ms": "0",
        }
        self.config_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        self.log4j_file.write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.server_log}\n"
            "appender.file.append = true\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = file\n"
        )

    def _java_command(self, main: str, *args: str) -> list[str]:
        return [
            _java(),
            f"-Xmx{self.heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.run_dir}",
            "-cp",
            f"{kafka_libs(self.version)}/*",
            main,
            *args,
        ]

    def _format_storage(self) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        command = self._java_command(
            "kafka.tools.StorageTool", "format", "--config", str(self.config_file), "--cluster-id", _cluster_id()
        )
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StackError(
                f"formatting Kafka storage in {self.data_dir}: no result after {FORMAT_TIMEOUT_S}s"
            ) from exc
        if result.returncode != 0:
            raise StackError(
                f"formatting Kafka storage in {self.data_dir} failed ({result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-3000:]}\n{log_tail(self.server_log)}"
            )

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start the broker (formatting its storage on first start) and wait until every known topic has a leader."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the JVM without waiting for it (see :meth:`wait_ready`); a running broker is left alone."""
        if self.running:
            return
        self._write_config()
        self._format_storage()
        self._process = ManagedProcess(
            f"Kafka {self.version} at {self.bootstrap}",
            self._java_command("kafka.Kafka", str(self.config_file)),
            self.console_log,
            cwd=self.run_dir,
            extra_logs=(self.server_log,),
        )
        self._process.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait for metadata, create the missing topics, wait for their leaders; a broker that fails is stopped."""
        if self._process is None:
            raise StackError("the Kafka broker was never launched")
        try:
            self._process.wait_until(self._metadata_answers, "metadata answer", timeout)
            self._create_missing(self.topics)
            self._process.wait_until(self._topics_led, f"leaders for topics {sorted(self.topics)}", timeout)
        except BaseException:
            self._process.stop()
            raise

    def stop(self) -> None:
        """Controlled shutdown: the broker flushes its logs and closes its segments."""
        self._drop_admin()
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """SIGKILL: an unclean shutdown, recovered from the log on the next start."""
        self._drop_admin()
        if self._process is not None:
            self._process.kill()

    def _drop_admin(self) -> None:
        # A client left behind would retry a stopped broker in the background for as long as it lives.
        self._admin = None

    def restart(self, *, hard: bool = False, timeout: float = READY_TIMEOUT_S) -> None:
        """Stop (SIGKILL with ``hard``) and start again on the same ports and log dirs."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start(timeout)

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def admin(self) -> AdminClient:
        if self._admin is None:
            # Connection errors while the broker starts are expected; they go to logging, not the terminal.
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap}, logger=log)
        return self._admin

    def create_topics(self, names: Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> None:
        """Create the topics that do not exist yet and wait until each has a leader; existing ones are kept."""
        wanted = dict.fromkeys(names, partitions)
        self.topics.update(wanted)
        if not self.running or self._process is None:
            return
        self._create_missing(wanted)
        self._process.wait_until(self._topics_led, f"leaders for topics {sorted(wanted)}")

    def _create_missing(self, topics: dict[str, int]) -> None:
        existing = self.admin().list_topics(timeout=PROBE_TIMEOUT_S * 5).topics
        missing = [NewTopic(name, count, 1) for name, count in topics.items() if name not in existing]
        if not missing:
            return
        for name, future in self.admin().create_topics(missing, request_timeout=30).items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise StackError(f"creating topic {name} on {self.bootstrap}: {exc}") from exc

    def _metadata_answers(self) -> bool:
        # Serves the client's queued log lines to the logger; they wait for a poll.
        self.admin().poll(0)
        try:
            self.admin().list_topics(timeout=PROBE_TIMEOUT_S)
        except KafkaException:
            return False
        return True

    def _topics_led(self) -> bool:
        self.admin().poll(0)
        try:
            metadata = self.admin().list_topics(timeout=PROBE_TIMEOUT_S)
        except KafkaException:
            return False
        for name in self.topics:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None or not topic.partitions:
                return False
            if any(partition.leader < 0 for partition in topic.partitions.values()):
                return False
        return self._partitions_served()

    def _partitions_served(self) -> bool:
        # Metadata can name a leader before that broker serves the partition ("not leader" to a fetch), so a
        # topic is ready only once every partition answers an offsets request.
        requests = {
            TopicPartition(name, partition): OffsetSpec.latest()  # type: ignore[no-untyped-call]
            for name, count in self.topics.items()
            for partition in range(count)
        }
        if not requests:
            return True
        try:
            for future in self.admin().list_offsets(requests, request_timeout=PROBE_TIMEOUT_S).values():
                future.result()
        except KafkaException:
            return False
        return True
