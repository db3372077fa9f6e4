package gateway.models_test

import data.gateway
import data.gateway.fixtures
import data.gateway.models

test_key_without_allow_list_may_use_any_model if {
	gateway.allow with input as fixtures.input_with({"model": {"requested": "any-model-at-all"}})
}

test_allow_list_glob_matches if {
	inp := fixtures.input_with({
		"client": {"metadata": {"allowed_models": ["gpt-4o*", "claude-*"]}},
		"model": {"requested": "gpt-4o-mini"},
	})
	gateway.allow with input as inp
}

test_glob_spans_dots_and_slashes if {
	inp := fixtures.input_with({
		"client": {"metadata": {"allowed_models": ["*"]}},
		"model": {"requested": "bedrock/anthropic.claude-3-5-sonnet"},
	})
	models.model_allowed with input as inp
}

test_model_outside_allow_list_denied if {
	inp := fixtures.input_with({"client": {"metadata": {"allowed_models": ["gpt-4o-mini"]}}})
	d := gateway.decision with input as inp
	d.allow == false
	d.reasons == {"model \"gpt-4o\" is not allowed for this key"}
}

test_empty_allow_list_allows_nothing if {
	inp := fixtures.input_with({"client": {"metadata": {"allowed_models": []}}})
	not gateway.allow with input as inp
}

test_team_rewrite if {
	models.rewritten == "gpt-4o" with input as fixtures.input_with({"model": {"requested": "gpt-4"}})
}

test_no_rewrite_for_other_teams if {
	inp := fixtures.input_with({"client": {"team": "support"}, "model": {"requested": "gpt-4"}})
	models.rewritten == "gpt-4" with input as inp
}

test_rewrite_from_mocked_team_data if {
	inp := fixtures.input_with({"client": {"team": "lab"}, "model": {"requested": "fast"}})
	models.rewritten == "gpt-4.1-mini" with input as inp
		with data.teams as {"lab": {"model_rewrites": {"fast": "gpt-4.1-mini"}}}
}
