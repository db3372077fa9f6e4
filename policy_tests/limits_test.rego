package gateway.limits_test

import data.gateway
import data.gateway.caller
import data.gateway.fixtures
import data.gateway.limits

test_tier_from_key_metadata_wins if {
	caller.tier_name == "free" with input as fixtures.input_with({"client": {"metadata": {"tier": "free"}}})
}

test_tier_from_team if {
	caller.tier_name == "premium" with input as fixtures.base_input
}

test_tier_default_for_keys_without_team if {
	caller.tier_name == "standard" with input as fixtures.input_with({"client": {"team": null}})
}

test_tier_for_anonymous if {
	inp := fixtures.input_with({"client": {"auth": "anonymous", "key_id": null, "team": null}})
	caller.tier_name == "free" with input as inp
}

test_unknown_tier_denied if {
	inp := fixtures.input_with({"client": {"metadata": {"tier": "gold"}}})
	d := gateway.decision with input as inp
	d.allow == false
	"unknown tier \"gold\"" in d.reasons
}

test_prompt_ceiling_denies_with_400 if {
	inp := fixtures.input_with({"client": {"team": "support"}, "tokens": {"prompt_estimate": 32001}})
	d := gateway.decision with input as inp
	d.allow == false
	d.status == 400
	d.reasons == {"prompt of about 32001 tokens exceeds the standard tier ceiling of 32000 tokens"}
}

test_prompt_at_ceiling_allowed if {
	inp := fixtures.input_with({"client": {"team": "support"}, "tokens": {"prompt_estimate": 32000}})
	count(limits.deny) == 0 with input as inp
}

test_max_tokens_cap_per_tier if {
	limits.max_tokens == 4096 with input as fixtures.input_with({"client": {"team": "support"}})
	limits.max_tokens == 512 with input as fixtures.input_with({"client": {"metadata": {"tier": "free"}}})
}

test_key_and_team_limits_declared if {
	declared := limits.declared with input as fixtures.input_with({"client": {"team": "support"}})
	declared == {
		{"name": "key-requests", "scope": "key:key-1", "requests": 600, "window_s": 60},
		{"name": "key-tokens", "scope": "key:key-1", "tokens": 200000, "window_s": 60},
		{"name": "team-requests", "scope": "team:support", "requests": 300, "window_s": 60},
		{"name": "team-tokens", "scope": "team:support", "tokens": 150000, "window_s": 60},
	}
}

test_team_with_one_limit_declares_one if {
	inp := fixtures.input_with({"client": {"team": "lab", "key_id": null}})
	declared := limits.declared with input as inp with data.teams as {"lab": {"limits": {"tokens_per_minute": 5}}}
	declared == {{"name": "team-tokens", "scope": "team:lab", "tokens": 5, "window_s": 60}}
}

test_daily_token_quota_from_key_metadata if {
	inp := fixtures.input_with({"client": {"metadata": {"tokens_per_day": 100000}}})
	{"name": "key-daily-tokens", "scope": "key:key-1", "tokens": 100000, "window_s": 86400} in limits.declared with input as inp
}

test_anonymous_limited_per_address if {
	inp := fixtures.input_with({"client": {"auth": "anonymous", "key_id": null, "team": null}})
	limits.declared == {{"name": "anonymous-requests", "scope": "ip:10.0.0.7", "requests": 20, "window_s": 60}} with input as inp
}
