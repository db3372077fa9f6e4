# METADATA
# title: Model access
# description: |
#   Which models a caller may use, from the key's metadata, and per-team model rewrites.
#   `input.client.metadata.allowed_models` is a list of glob patterns (`gpt-4o*`, `claude-*`);
#   a key without it may use every configured model, an empty list none.
package gateway.models

import data.gateway.caller

# Keys without an allow-list (most) fail the first condition and cost nothing more.
deny contains {"reason": sprintf("model %q is not allowed for this key", [input.model.requested]), "status": 403} if {
	_ = input.client.metadata.allowed_models
	is_string(input.model.requested)
	not model_allowed
}

# METADATA
# description: No allow-list in the key metadata means every model.
model_allowed if not has_allow_list

# Defined (whatever its value, null included) when the metadata has the field.
has_allow_list if {
	_ := input.client.metadata.allowed_models
}

model_allowed if {
	some pattern in input.client.metadata.allowed_models
	glob.match(pattern, null, input.model.requested)
}

# METADATA
# description: A team may map a model name to another (data.teams[team].model_rewrites).
rewritten := m if {
	m := caller.team.model_rewrites[input.model.requested]
} else := input.model.requested
