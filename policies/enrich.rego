# METADATA
# title: Enrichment
# description: |
#   Headers added to the upstream request, the team's system prompt and the tags recorded
#   with the usage for chargeback.
package gateway.enrich

import data.gateway.caller

# METADATA
# description: |
#   x-gateway-request-id, x-gateway-team and x-gateway-key-id when known, plus the team's
#   `headers` (the x-gateway-* names stay the gateway's own, so the rules never give one
#   name two values).
headers[name] := value if {
	some name, value in caller.team.headers
	not startswith(lower(name), "x-gateway-")
}

# One rule per header: each is set when its value is known, independently of the others.
headers["x-gateway-request-id"] := input.request.id if is_string(input.request.id)

headers["x-gateway-team"] := input.client.team if is_string(input.client.team)

headers["x-gateway-key-id"] := input.client.key_id if is_string(input.client.key_id)

system_prompt := caller.team.system_prompt

# METADATA
# description: |
#   Recorded with the usage: team, tier and the team's cost center (the string ones). A client
#   document without a `team` field (even null) gets no tags at all.
tags["team"] := input.client.team if is_string(input.client.team)

tags["tier"] := tier if {
	_ = input.client.team
	tier := caller.tier_name
	is_string(tier)
}

tags["cost_center"] := cost_center if {
	cost_center := caller.team.cost_center
	is_string(cost_center)
}
