# Merge Data Access audit logging into a project IAM policy (gcloud projects get-iam-policy
# --format=json), keeping everything else: bindings, etag, version, other services'
# auditConfigs, and exemptedMembers of existing log configs.
# Usage: jq -f audit_configs.jq --args SERVICE... < policy.json
def wanted: ["ADMIN_READ", "DATA_READ", "DATA_WRITE"];
def with_types:
  .auditLogConfigs = ((.auditLogConfigs // [])
    + ((wanted - [(.auditLogConfigs // [])[].logType]) | map({logType: .})));
reduce $ARGS.positional[] as $svc (.;
  if any((.auditConfigs // [])[]; .service == $svc) then
    .auditConfigs |= map(if .service == $svc then with_types else . end)
  else
    .auditConfigs = ((.auditConfigs // []) + [{service: $svc} | with_types])
  end)
