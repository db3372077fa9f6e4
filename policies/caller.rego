# METADATA
# title: Caller facts
# description: |
#   Who is calling, resolved once for the other packages: the team's configuration
#   (data.teams) and the tier (key metadata `tier`, else the team's, else `free` for
#   anonymous callers and settings.default_tier otherwise).
package gateway.caller

team := t if {
	t := data.teams[input.client.team]
} else := {}

tier_name := t if {
	t := input.client.metadata.tier
	is_string(t)
} else := t if {
	t := team.tier
} else := data.settings.anonymous_tier if {
	input.client.auth == "anonymous"
} else := data.settings.default_tier

tier := data.tiers[tier_name]
