"""One MQTT v5 connection to the broker: TLS context, persistent session, last will.

aiomqtt 2.x hides two things the link needs, so :class:`LinkClient` subclasses it (aiomqtt
is pinned below 3 for this): whether the broker still had our session (CONNACK
session-present), and a prompt error when the broker drops us before CONNACK (a refused
client certificate shows up only then under TLS 1.3; aiomqtt would wait for its timeout and
then say nothing about why).

It also owns the outcome of aiomqtt's per-connection ``_disconnected`` future. aiomqtt sets
the disconnect's error there but reads it only while someone iterates ``messages``; a link
lost during a publish or a subscribe, or while the uplink failed first, left the error
unread ("Future exception was never retrieved", one per lost connection). Publishes and
subscribes here wait on that future too (they fail at once with the disconnect's error
instead of at their timeout), and :meth:`LinkClient.abort` reads whatever is left. A
connection that drops in the same read as its CONNACK is one aiomqtt would call connected
(it replaces the finished future with a fresh one nothing will ever set): entering fails
instead, with the disconnect's error. After :meth:`LinkClient.abort`, an outcome set late (by
a callback queued before the close) is read when it is set.

aiomqtt adds the socket's reader and writer on the loop after paho asked for them from its
connect thread, by file number. Under a connection storm the socket was closed by then, or
its number reused by the next connection, whose reader or writer the dead one's would
replace; both are added here only while the socket is still this client's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
from collections.abc import Awaitable
from typing import Any, Self, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.modules.cloud_link.config import CloudLinkConfig, TlsSettings
from edge_agent.modules.cloud_link.link_state import LinkState
from edge_agent.modules.cloud_link.topics import STATUS, vehicle_topic

T = TypeVar("T")
MESSAGE_ID_PROPERTY = "message-id"
_log = logging.getLogger("edge_agent.module.cloud-link.mqtt")


class PublishRefused(aiomqtt.MqttError):
    """The broker answered a publish with a failure reason code (e.g. not authorized)."""


class TlsSetupError(Exception):
    """The TLS files could not be loaded; the message names the file and the reason."""


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails (paho would leave the socket to the GC)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(settings: TlsSettings) -> ssl.SSLContext:
    """A client context that verifies the broker (CA and host name) and shows our certificate.

    Reads files: call it off the event loop.
    """
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(settings.ca_file))
    except (OSError, ssl.SSLError) as error:
        raise TlsSetupError(f"tls.ca_file {settings.ca_file}: {error}") from None
    try:
        context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
    except (OSError, ssl.SSLError) as error:
        raise TlsSetupError(
            f"tls.cert_file/key_file {settings.cert_file}, {settings.key_file}: {error}"
        ) from None
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if settings.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.sslsocket_class = _ClosingSSLSocket
    return context


def status_payload(state: LinkState, **fields: Any) -> bytes:
    """The retained ``status`` document: ``{"state": "online" | "offline", ...}``."""
    return json.dumps({"state": state.value, **fields}, separators=(",", ":")).encode()


def publish_properties(message_id: bytes) -> Properties:
    """PUBLISH properties carrying the record's message id (hex) for de-duplication."""
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = [(MESSAGE_ID_PROPERTY, message_id.hex())]
    return properties


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _read_outcome(future: asyncio.Future[Any]) -> None:
    """Retrieve ``future``'s error, so asyncio does not report it as never retrieved."""
    if not future.cancelled() and (error := future.exception()) is not None:
        _log.debug("connection ended: %s", error)


class LinkClient(aiomqtt.Client):
    """An aiomqtt client for one connection attempt of vehicle ``vehicle_id``.

    ``identifier`` (default: the vehicle id) and ``last_will`` let a diagnostic connection
    (``edge-agent cloud check``) run beside the agent without taking over its session.
    """

    def __init__(
        self,
        config: CloudLinkConfig,
        vehicle_id: str,
        context: ssl.SSLContext | None,
        *,
        max_queued_incoming: int = 1000,
        identifier: str | None = None,
        last_will: bool = True,
    ) -> None:
        self.mqtt5 = config.mqtt_version == "5"
        connect: Properties | None = None
        will_properties: Properties | None = None
        # MQTT 3.1.1 has no session expiry: a persistent session, or a clean one for 0.
        session: dict[str, Any] = {"clean_session": config.session_expiry_s == 0}
        if self.mqtt5:
            connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            connect.SessionExpiryInterval = config.session_expiry_s
            # The broker must not send us more than this (MQTT 5, 3.1.2.11.4): an oversize
            # message for the vehicle is dropped at the broker, never read into memory here.
            connect.MaximumPacketSize = config.max_packet_bytes
            will_properties = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
            will_properties.MessageExpiryInterval = config.session_expiry_s or 86_400
            session = {"clean_start": False}
        super().__init__(
            config.host,
            config.port,
            identifier=identifier or vehicle_id,
            username=vehicle_id,
            protocol=aiomqtt.ProtocolVersion.V5 if self.mqtt5 else aiomqtt.ProtocolVersion.V311,
            properties=connect,
            **session,
            keepalive=config.keepalive_s,
            timeout=config.operation_timeout_s,
            tls_context=context,
            will=aiomqtt.Will(
                vehicle_topic(vehicle_id, STATUS),
                status_payload(LinkState.OFFLINE, reason="connection lost"),
                qos=1,
                retain=True,
                properties=will_properties,
            )
            if last_will
            else None,
            max_inflight_messages=config.inflight_window,
            max_queued_incoming_messages=max_queued_incoming,
            logger=_log,
        )
        self.session_present = False
        self.last_error = ""
        self._aborted = False
        self._publish_reasons: dict[int, Any] = {}
        # Socket connect and TLS handshake happen in a worker thread, each bounded by this.
        self._client.connect_timeout = config.connect_timeout_s
        self._client.on_log = self._remember_error
        # aiomqtt warns above this many pending calls; a full in-flight window is normal.
        self.pending_calls_threshold = config.inflight_window + 16

    async def __aenter__(self) -> Self:
        """Connect; raises ``aiomqtt.MqttError`` if the connection ended already."""
        ended = self._disconnected
        await super().__aenter__()
        if ended is not self._disconnected and ended.done():
            # Ended between CONNACK and here: aiomqtt dropped that outcome for a new future.
            self._disconnected = ended
            error = None if ended.cancelled() else ended.exception()
            raise aiomqtt.MqttError("connection lost right after CONNACK") from error
        return self

    def _remember_error(self, _client: Any, _userdata: Any, level: int, text: str) -> None:
        if level == paho.MQTT_LOG_ERR:
            self.last_error = text

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: Any,
        properties: Properties | None = None,
    ) -> None:
        self.session_present = bool(flags.session_present)
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: Any,
        properties: Properties | None = None,
    ) -> None:
        if self._connected.cancelled():
            return  # the connect was abandoned (timed out, or its task cancelled): no one waits
        if not self._connected.done():
            # Closed before CONNACK: fail the connect now, with the reason paho logged.
            reason = self.last_error or f"closed by the broker ({reason_code})"
            if _on_loop(self._loop):
                self._fail_connect(reason)
            else:  # paho's connect runs in a worker thread
                self._loop.call_soon_threadsafe(self._fail_connect, reason)
            return
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: Any,
        properties: Properties,
    ) -> None:
        # aiomqtt drops the PUBACK reason code; keep failures for publish_acked.
        if getattr(reason_code, "is_failure", False):
            self._publish_reasons[mid] = reason_code
        super()._on_publish(client, userdata, mid, reason_code, properties)

    async def publish_acked(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        properties: Properties | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Publish with QoS 1 and return once the broker's PUBACK accepted it.

        Raises ``aiomqtt.MqttError`` when the link fails or no PUBACK comes within
        ``timeout_s`` (default: the operation timeout), :class:`PublishRefused` when the
        PUBACK carries a failure reason (MQTT v5: not authorized, quota exceeded, ...).
        """
        info = self._client.publish(topic, payload, 1, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "could not publish") from self.disconnect_error()
        if not info.is_published():
            confirmation = asyncio.Event()
            with self._pending_call(info.mid, confirmation, self._pending_publishes):
                await self.unless_disconnected(
                    confirmation.wait(), self.timeout if timeout_s is None else timeout_s
                )
        reason = self._publish_reasons.pop(info.mid, None)
        if reason is not None:
            raise PublishRefused(f"broker refused publish on {topic}: {reason}")

    async def unless_disconnected(self, step: Awaitable[T], timeout_s: float | None = None) -> T:
        """``step``'s result, unless the connection ends first or ``timeout_s`` passes.

        Raises ``aiomqtt.MqttError``: "connection lost" (caused by the disconnect's error)
        or "Operation timed out". ``step`` is cancelled when it does not finish.
        """
        waiter = asyncio.ensure_future(step)
        try:
            async with asyncio.timeout(None if timeout_s == math.inf else timeout_s):
                await asyncio.wait(
                    (waiter, self._disconnected), return_when=asyncio.FIRST_COMPLETED
                )
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None
        finally:
            if not waiter.done():
                waiter.cancel()
        if waiter.done():
            return waiter.result()
        raise aiomqtt.MqttError("connection lost") from self.disconnect_error()

    def disconnect_error(self) -> BaseException | None:
        """The error the connection ended with, if it has ended with one.

        Reading it here is what retrieves it: asyncio logs an error nobody read as "Future
        exception was never retrieved" when the client is collected.
        """
        ended = self._disconnected
        if not ended.done() or ended.cancelled():
            return None
        return ended.exception()

    def _fail_connect(self, reason: str) -> None:
        if not self._connected.done() and not self._aborted:
            self._connected.set_exception(aiomqtt.MqttError(reason))

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def read() -> None:
            try:
                while True:
                    client.loop_read()
                    # loop_read may leave decoded TLS bytes in the socket (paho issue 131).
                    current = client.socket()
                    if isinstance(current, ssl.SSLSocket) and current.pending() > 0:
                        continue
                    break
            except Exception as error:  # a broken socket: the connection is lost
                self._lose(error)

        def register() -> None:
            if (current := self._still_open(sock)) is not None:
                self._loop.add_reader(current.fileno(), read)
                if self._misc_task is None:
                    self._misc_task = self._loop.create_task(self._misc_loop())

        self._loop.call_soon_threadsafe(register)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def write() -> None:
            try:
                client.loop_write()
            except Exception as error:  # a broken socket: the connection is lost
                self._lose(error)

        def register() -> None:
            if (current := self._still_open(sock)) is not None:
                self._loop.add_writer(current.fileno(), write)

        self._loop.call_soon_threadsafe(register)

    def _still_open(self, sock: Any) -> Any:
        """``sock`` if it is still this client's open socket, else None.

        aiomqtt adds the reader and writer on the loop, by file number, after paho asked for
        them from its connect thread. By then the link may have dropped: the socket closed
        (EBADF in the loop), its number perhaps reused by the next connection, whose reader
        or writer this client's would replace (seen at 2,000 vehicles with a node killed).
        """
        current = self._client.socket()
        return current if not self._aborted and current is not None and current is sock else None

    def _lose(self, error: BaseException) -> None:
        """The connection broke under a read or write: end it with ``error``."""
        if not self._disconnected.done():
            self._disconnected.set_exception(error)

    def abort(self) -> None:
        """Drop the connection now, without waiting for anything; safe to call twice.

        Sends DISCONNECT if the socket still takes it, then closes the socket so that no
        reader callback or keepalive task outlives this client.
        """
        self._aborted = True
        for step in (self._client.disconnect, self._client._sock_close):
            try:
                step()
            except Exception as error:  # nothing left to tidy up
                _log.debug("abort: %s", error)
        if self._misc_task is not None:
            self._misc_task.cancel()
        # Nobody waits on these any more: read their outcome now or whenever it is set (a
        # callback the loop had queued before the close may still set one).
        for outcome in (self._connected, self._disconnected):
            outcome.add_done_callback(_read_outcome)
