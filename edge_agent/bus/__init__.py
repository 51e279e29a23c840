"""The in-process bus: MQTT-style topics, bounded subscriptions, priorities, request/reply."""

from edge_agent.bus.bus import Bus, NoResponder, RequestFailed, RequestTimeout
from edge_agent.bus.message import Message, OverflowPolicy, Priority
from edge_agent.bus.subscription import Subscription, SubscriptionClosed, SubscriptionStats
from edge_agent.bus.topics import TopicError, topic_matches, validate_filter, validate_topic

__all__ = [
    "Bus",
    "Message",
    "NoResponder",
    "OverflowPolicy",
    "Priority",
    "RequestFailed",
    "RequestTimeout",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionStats",
    "TopicError",
    "topic_matches",
    "validate_filter",
    "validate_topic",
]
