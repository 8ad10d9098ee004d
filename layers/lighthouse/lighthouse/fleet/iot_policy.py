"""IoT Core policy documents for an MQTT account, from the same table mosquitto's roles come from."""

from __future__ import annotations

from typing import Any

from lighthouse.fleet.contract import COMMAND_TOPICS, PREFIX, agent_acl


def policy_for(username: str, admin: bool, region: str, account: str, partition: str = "aws") -> dict[str, Any]:
    arn = f"arn:{partition}:iot:{region}:{account}"
    if admin:
        publish = [f"{arn}:topic/{PREFIX}/*/{suffix}" for suffix in COMMAND_TOPICS.values()]
        subscribe = [f"{arn}:topicfilter/{PREFIX}/*"]
        receive = [f"{arn}:topic/{PREFIX}/*"]
    else:
        acl = agent_acl(username)
        publish = [f"{arn}:topic/{t}" for t in acl.publish]
        subscribe = [f"{arn}:topicfilter/{t}" for t in acl.subscribe]
        receive = [f"{arn}:topic/{t}" for t in acl.subscribe]
    return {
        "Version": "2012-10-17",
        "Statement": [
            # The client id must be the username: nobody can take over another agent's session.
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{username}"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": publish},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": subscribe},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": receive},
        ],
    }
