/** The CLI's help text (also printed on a usage error). */
export const USAGE = `Usage: nopesight-auth <command> [options]
       npm run cli -- <command> [options]

Talks to the server's store directly: run it with the same configuration as the server
(REDIS_URL, REDIS_PREFIX, SECRET_KEY, PUBLIC_URL, CONFIG_FILE). Changes are audited with
actor "cli" and take effect on running servers without a restart.

Commands:
  create-admin            A user holding every API scope (admin.users, admin.settings, admin.audit, ...)
      --email <email>         required
      --name <name>
      --password-stdin        read the password from standard input; otherwise one is
                              generated and printed once
  create-user             A user with the given scopes
      --email <email>         required
      --scopes <a,b,...>      comma-separated API scopes (default: none)
      --name <name>
      --password-stdin        read the password from standard input
      --invite                no password: print a one-time set-password link instead
                              (default when --password-stdin is absent: a generated password)
  create-client           An OAuth client (RFC 7591 names); a confidential client's secret is printed once
      --name <name>           client_name, required
      --redirect-uri <uri>    repeatable; https, or http on localhost/loopback (127.0.0.1
                              and [::1] recommended); native clients: any port on a loopback
                              redirect, and private-use schemes (com.example.app:/callback)
      --grant-type <type>     repeatable (default: authorization_code and refresh_token)
      --auth-method <method>  none | client_secret_basic (default) | client_secret_post | private_key_jwt
      --scope "<a b ...>"     scopes the client may request (default: openid)
      --client-id <id>        chosen id (default: generated)
      --id-token-alg <alg>    RS256 (default) | PS256 | ES256 | EdDSA: how its ID tokens are signed
      --application-type <t>  web (default) | native: a CLI, desktop or mobile app (RFC 8252)
  create-service-account  A service account with a generated key pair; the key file is written once
      --name <name>           required
      --scopes <a,b,...>      required
      --key-file <path>       required; created with mode 0600, never overwritten
      --alg <alg>             RS256 (default) | PS256 | ES256 | EdDSA
  rotate-keys             Rotate the token signing keys (old keys stay published until their tokens expire)
  audit                   Recent audit events, newest first
      --type <type>           exact, or a prefix ending in * (login.*)
      --actor <id>  --subject <id>  --outcome success|failure
      --since <time>  --until <time>   ISO 8601 date-time or epoch seconds
      --limit <n>             default 20, at most 500
  help                    This text

Options for every command:
  --json                  machine-readable output (one JSON document; audit: JSON lines)

Exit codes: 0 done, 1 refused or failed (e.g. email taken, store unreachable), 2 usage or configuration error.
`;
