"""QoS 1 messages queued for a persistent MQTT 5 session survive a broker restart."""

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.mqtt_sessions import forget_session
from config.settings import Settings
from schemas.mqtt_principals import SANDBOX_ROOT, MqttLogin
from sensors.mqtt_publish import publish_payloads
from stack.mosquitto_broker import MosquittoBroker
from stack.stack_config import StackConfig
from tests.mqtt_tls import secure
from zerocarbon.component_configs import mqtt_ca_file


def _persistent_client(
    client_id: str, received: list[bytes], subscribed: threading.Event, login: MqttLogin
) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(login.username, login.password)
    client.on_message = lambda _c, _u, msg: received.append(msg.payload)
    client.on_subscribe = lambda *_a: subscribed.set()
    return client


def _connect(client: mqtt.Client, settings: Settings) -> None:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    secure(client, settings)
    client.connect(settings.mqtt_host, settings.mqtt_port, clean_start=False, properties=props)
    client.loop_start()


def test_queued_qos1_messages_survive_a_broker_restart(
    settings: Settings, stack_config: StackConfig, gateway_login: MqttLogin
) -> None:
    run = uuid.uuid4().hex[:8]
    prefix = f"{SANDBOX_ROOT}/persist/{run}"  # the gateway may publish and read there
    received: list[bytes] = []
    subscribed = threading.Event()
    client = _persistent_client(f"test-persist-{run}", received, subscribed, gateway_login)
    _connect(client, settings)
    client.subscribe(f"{prefix}/+", qos=1)
    assert subscribed.wait(10)
    client.disconnect()
    client.loop_stop()

    messages = [(f"{prefix}/dev{k}", str(k).encode()) for k in range(5)]
    assert (
        publish_payloads(
            settings.mqtt_host, settings.mqtt_port, messages, gateway_login, ca_file=mqtt_ca_file(settings)
        )
        == 5
    )

    broker = MosquittoBroker(stack_config)
    assert broker.stop()
    broker.start()
    broker.wait_ready()

    _connect(client, settings)
    try:
        deadline = threading.Event()
        for _ in range(40):
            if len(received) >= 5:
                break
            deadline.wait(0.25)
    finally:
        client.disconnect()
        client.loop_stop()
        forget_session(
            settings.mqtt_host,
            settings.mqtt_port,
            f"test-persist-{run}",
            gateway_login,
            ca_file=mqtt_ca_file(settings),
        )
    values = sorted(int(p) for p in received)
    assert values == [0, 1, 2, 3, 4]
