package gateway.main_test

import data.gateway
import data.gateway.fixtures

test_allowed_request_has_complete_decision if {
	d := gateway.decision with input as fixtures.base_input
	d.allow == true
	d.reasons == set()
	d.status == 403
	d.transform.max_tokens == 16384
	d.tags == {"team": "research", "tier": "premium", "cost_center": "CC-1001"}
	not d.transform.model
}

test_missing_input_section_denies if {
	d := gateway.decision with input as object.remove(fixtures.base_input, ["client"])
	d.allow == false
	"input.client is missing" in d.reasons
}

# Each required field, removed alone, denies with its own reason and nothing else.
test_missing_required_field_denies if {
	every path, reason in {
		"/model/requested": "input.model.requested is missing",
		"/tokens/prompt_estimate": "input.tokens.prompt_estimate is missing",
		"/prompt/pii": "input.prompt.pii is missing",
		"/prompt/injection": "input.prompt.injection.score is missing",
		"/request": "input.request is missing",
	} {
		d := gateway.decision with input as json.patch(fixtures.base_input, [{"op": "remove", "path": path}])
		d.allow == false
		d.reasons == {reason}
		d.status == 403
	}
}

test_ill_typed_required_field_denies if {
	d := gateway.decision with input as fixtures.input_with({"tokens": {"prompt_estimate": "100"}})
	d.reasons == {"input.tokens.prompt_estimate is missing"}
}

test_empty_input_denies if {
	d := gateway.decision with input as {}
	d.allow == false
	"input.model.requested is missing" in d.reasons
	"input.tokens.prompt_estimate is missing" in d.reasons
	"input.prompt.injection.score is missing" in d.reasons
	"input.prompt.pii is missing" in d.reasons
}

test_status_prefers_forbidden_over_softer if {
	inp := fixtures.input_with({
		"client": {"metadata": {"allowed_models": ["claude-*"]}},
		"tokens": {"prompt_estimate": 999999},
	})
	gateway.status == 403 with input as inp
}

test_status_is_the_only_denials_status if {
	gateway.status == 400 with input as fixtures.input_with({"tokens": {"prompt_estimate": 999999}})
}

test_transform_model_only_when_it_changes if {
	d := gateway.decision with input as fixtures.input_with({"model": {"requested": "gpt-4"}})
	d.transform.model == "gpt-4o"
}
