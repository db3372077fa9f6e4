package gateway.budget_test

import data.gateway
import data.gateway.budget
import data.gateway.fixtures

test_no_downgrade_below_threshold if {
	inp := fixtures.input_with({"usage": {"team": {"spend_month": 3999}}})
	not budget.downgrade with input as inp
	d := gateway.decision with input as inp
	not d.transform.model
}

test_downgrade_when_team_budget_nearly_spent if {
	inp := fixtures.input_with({"usage": {"team": {"spend_month": 4000}}})
	d := gateway.decision with input as inp
	d.allow == true
	d.transform.model == "gpt-4o-mini"
}

test_downgrade_applies_after_rewrite if {
	inp := fixtures.input_with({"model": {"requested": "gpt-4"}, "usage": {"team": {"spend_month": 4500}}})
	gateway.model == "gpt-4o-mini" with input as inp
}

test_no_cheaper_model_keeps_model if {
	inp := fixtures.input_with({"model": {"requested": "gpt-4o-mini"}, "usage": {"team": {"spend_month": 4500}}})
	d := gateway.decision with input as inp
	not d.transform.model
}

test_exhausted_team_budget_denies_with_429 if {
	inp := fixtures.input_with({"usage": {"team": {"spend_month": 5000}}})
	d := gateway.decision with input as inp
	d.allow == false
	d.status == 429
	d.reasons == {"the team research monthly budget is spent"}
}

test_key_budget_from_metadata if {
	inp := fixtures.input_with({
		"client": {"team": null, "metadata": {"monthly_budget": 10}},
		"usage": {"key": {"spend_month": 12.5}},
	})
	{"reason": "the key monthly budget is spent", "status": 429} in budget.deny with input as inp
}

test_missing_usage_reads_as_nothing_spent if {
	gateway.allow with input as object.remove(fixtures.base_input, ["usage"])
}

test_downgrade_when_key_budget_nearly_spent if {
	inp := fixtures.input_with({
		"client": {"team": null, "metadata": {"monthly_budget": 10}},
		"usage": {"key": {"spend_month": 8.5}},
	})
	d := gateway.decision with input as inp
	d.allow == true
	d.transform.model == "gpt-4o-mini"
}
