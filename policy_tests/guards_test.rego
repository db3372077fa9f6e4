package gateway.guards_test

import data.gateway
import data.gateway.fixtures
import data.gateway.guards

test_team_forbidden_pii_denies if {
	inp := fixtures.input_with({"client": {"team": "support"}, "prompt": {"pii": [{"type": "CREDIT_CARD", "count": 1}]}})
	d := gateway.decision with input as inp
	d.allow == false
	d.reasons == {"prompt contains CREDIT_CARD, which the team support policy forbids"}
}

test_pii_other_teams_accept_is_allowed if {
	inp := fixtures.input_with({"prompt": {"pii": [{"type": "CREDIT_CARD", "count": 1}]}})
	gateway.allow with input as inp
}

test_gateway_wide_pii_deny if {
	inp := fixtures.input_with({"client": {"team": null}, "prompt": {"pii": [{"type": "US_SSN", "count": 2}]}})
	reasons := {d.reason | some d in guards.deny} with input as inp with data.settings.deny_pii as ["US_SSN"]
	reasons == {"prompt contains US_SSN, which the gateway policy forbids"}
}

test_zero_count_finding_ignored if {
	inp := fixtures.input_with({"client": {"team": "support"}, "prompt": {"pii": [{"type": "CREDIT_CARD", "count": 0}]}})
	count(guards.deny) == 0 with input as inp
}

test_injection_score_at_threshold_denies if {
	inp := fixtures.input_with({"prompt": {"injection": {"score": 0.8, "signals": ["ignore_previous"]}}})
	d := gateway.decision with input as inp
	d.allow == false
	d.reasons == {"prompt-injection score 0.8 reaches the threshold 0.8"}
}

test_injection_below_threshold_allowed if {
	gateway.allow with input as fixtures.input_with({"prompt": {"injection": {"score": 0.79, "signals": []}}})
}

test_team_injection_threshold if {
	inp := fixtures.input_with({"client": {"team": "support"}, "prompt": {"injection": {"score": 0.6, "signals": []}}})
	not gateway.allow with input as inp
}

test_request_and_response_redaction if {
	d := gateway.decision with input as fixtures.input_with({"client": {"team": "support"}})
	d.transform.redact == {"EMAIL_ADDRESS", "PHONE_NUMBER"}
	d.response.redact == {"CREDIT_CARD", "US_SSN"}
	d.response.deny_on == {"CREDIT_CARD"}
}

test_team_response_redact_adds_to_default if {
	inp := fixtures.input_with({"client": {"team": "lab"}})
	guards.response_redact == {"CREDIT_CARD", "US_SSN", "EMAIL_ADDRESS"} with input as inp
		with data.teams as {"lab": {"response_redact": ["EMAIL_ADDRESS"]}}
}
