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
#   `headers` (the x-gateway-* names stay the gateway's own, so the two rules never give one
#   name two values).
headers[name] := value if {
	some name, value in caller.team.headers
	not startswith(lower(name), "x-gateway-")
}

headers[name] := value if {
	some name, value in {
		"x-gateway-request-id": input.request.id,
		"x-gateway-team": input.client.team,
		"x-gateway-key-id": input.client.key_id,
	}
	is_string(value)
}

system_prompt := caller.team.system_prompt

# METADATA
# description: Recorded with the usage: team, tier and the team's cost center.
tags[name] := value if {
	some name, value in {
		"team": input.client.team,
		"tier": caller.tier_name,
		"cost_center": object.get(caller.team, "cost_center", null),
	}
	is_string(value)
}
