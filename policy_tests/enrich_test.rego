package gateway.enrich_test

import data.gateway.enrich
import data.gateway.fixtures

test_gateway_headers if {
	enrich.headers == {
		"x-gateway-request-id": "req-1",
		"x-gateway-team": "research",
		"x-gateway-key-id": "key-1",
	} with input as fixtures.base_input
}

test_team_headers_added if {
	headers := enrich.headers with input as fixtures.input_with({"client": {"team": "support"}})
	headers["x-org-unit"] == "support"
}

test_team_cannot_override_gateway_headers if {
	inp := fixtures.input_with({"client": {"team": "lab"}})
	headers := enrich.headers with input as inp
		with data.teams as {"lab": {"headers": {"X-Gateway-Team": "spoofed", "x-cost": "7"}}}
	headers["x-gateway-team"] == "lab"
	headers["x-cost"] == "7"
	not headers["X-Gateway-Team"]
}

test_anonymous_headers if {
	inp := fixtures.input_with({"client": {"auth": "anonymous", "key_id": null, "team": null}})
	enrich.headers == {"x-gateway-request-id": "req-1"} with input as inp
}

# Each header stands alone: a missing client section leaves the request id in place.
test_headers_set_independently if {
	enrich.headers == {"x-gateway-request-id": "req-1"} with input as object.remove(fixtures.base_input, ["client"])
	inp := object.remove(fixtures.base_input, ["request"])
	enrich.headers == {"x-gateway-team": "research", "x-gateway-key-id": "key-1"} with input as inp
}

test_team_system_prompt if {
	sp := enrich.system_prompt with input as fixtures.input_with({"client": {"team": "support"}})
	startswith(sp.prepend, "You are the support assistant")
}

test_no_system_prompt_without_team_setting if {
	not enrich.system_prompt with input as fixtures.base_input
}

test_tags_for_chargeback if {
	enrich.tags == {"team": "support", "tier": "standard", "cost_center": "CC-2002"} with input as fixtures.input_with({"client": {"team": "support"}})
	enrich.tags == {"tier": "standard"} with input as fixtures.input_with({"client": {"team": null}})
}
