# METADATA
# title: Model access
# description: |
#   Which models a caller may use, from the key's metadata, and per-team model rewrites.
#   `input.client.metadata.allowed_models` is a list of glob patterns (`gpt-4o*`, `claude-*`);
#   a key without it may use every configured model, an empty list none.
package gateway.models

import data.gateway.caller

requested := input.model.requested

deny contains {"reason": "input.model.requested is missing", "status": 403} if not has_model

has_model if is_string(input.model.requested)

deny contains {"reason": sprintf("model %q is not allowed for this key", [requested]), "status": 403} if {
	is_string(requested)
	not model_allowed
}

# METADATA
# description: No allow-list in the key metadata means every model.
model_allowed if not has_allow_list

has_allow_list if "allowed_models" in object.keys(input.client.metadata)

model_allowed if {
	some pattern in input.client.metadata.allowed_models
	glob.match(pattern, null, requested)
}

# METADATA
# description: A team may map a model name to another (data.teams[team].model_rewrites).
rewritten := m if {
	m := caller.team.model_rewrites[requested]
} else := requested
