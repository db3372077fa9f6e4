# METADATA
# title: Ceilings and rate limits
# description: |
#   The caller's tier (see gateway.caller) sets the prompt-token ceiling, the max_tokens cap
#   and the rate limits declared per key (or per source address for anonymous callers).
#   Teams add team-wide limits. OPA only declares limits; the gateway keeps the counters.
package gateway.limits

import data.gateway.caller

deny contains {"reason": sprintf("unknown tier %q", [caller.tier_name]), "status": 403} if {
	not caller.tier
}

# A non-numeric estimate is denied as missing (main.rego); Rego orders every string after
# every number, so without is_number it would also "exceed" the ceiling.
deny contains {
	"reason": sprintf(
		"prompt of about %d tokens exceeds the %s tier ceiling of %d tokens",
		[estimate, caller.tier_name, ceiling],
	),
	"status": 400,
} if {
	estimate := input.tokens.prompt_estimate
	is_number(estimate)
	ceiling := caller.tier.max_prompt_tokens
	estimate > ceiling
}

# METADATA
# description: The max_tokens cap; the gateway lowers larger client values and sets it when absent.
max_tokens := caller.tier.max_tokens

# METADATA
# description: |
#   Per key: the tier's requests and tokens per minute; key metadata `tokens_per_day` adds a
#   daily token quota.
declared contains limit if {
	is_string(input.client.key_id)
	scope := concat("", ["key:", input.client.key_id])
	some limit in [
		{"name": "key-requests", "scope": scope, "requests": caller.tier.requests_per_minute, "window_s": 60},
		{"name": "key-tokens", "scope": scope, "tokens": caller.tier.tokens_per_minute, "window_s": 60},
	]
}

declared contains {
	"name": "key-daily-tokens",
	"scope": concat("", ["key:", input.client.key_id]),
	"tokens": input.client.metadata.tokens_per_day,
	"window_s": 86400,
} if {
	is_number(input.client.metadata.tokens_per_day)
	is_string(input.client.key_id)
}

# METADATA
# description: Anonymous callers are limited per source address.
declared contains {
	"name": "anonymous-requests",
	"scope": concat("", ["ip:", input.request.source_ip]),
	"requests": caller.tier.requests_per_minute,
	"window_s": 60,
} if {
	input.client.auth == "anonymous"
	is_string(input.request.source_ip)
}

# METADATA
# description: Team-wide limits from data.teams[team].limits (either or both).
declared contains {
	"name": "team-requests",
	"scope": concat("", ["team:", input.client.team]),
	"requests": per_minute,
	"window_s": 60,
} if {
	per_minute := caller.team.limits.requests_per_minute
	is_number(per_minute)
}

declared contains {
	"name": "team-tokens",
	"scope": concat("", ["team:", input.client.team]),
	"tokens": per_minute,
	"window_s": 60,
} if {
	per_minute := caller.team.limits.tokens_per_minute
	is_number(per_minute)
}
