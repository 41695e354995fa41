"""Hand-written questions for bench/quality.py, each with its known answer.

Each is phrased the way a person asks for code they cannot name. None of its
words may equal an identifier of the answer or a part of one (checked by
`bench/quality.py` before it runs); paths are those of the blanked corpus
that `bench/quality_corpus.py` writes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """A question as a person asks it, and the function that answers it."""

    query: str
    path: str
    name: str


QUESTIONS: tuple[Question, ...] = (
    # Python: werkzeug
    Question(
        "random string of letters and digits to mix into a password before hashing",
        "python/werkzeug/security.py",
        "gen_salt",
    ),
    Question(
        "combine a base folder with user supplied pieces so the result can never "
        "point outside of it",
        "python/werkzeug/security.py",
        "safe_join",
    ),
    Question(
        "sanitize what a user called their uploaded document before saving it to "
        "disk, dropping slashes and odd characters",
        "python/werkzeug/utils.py",
        "secure_filename",
    ),
    Question(
        "turn a moment into the text form web headers like Expires use, in GMT",
        "python/werkzeug/http.py",
        "http_date",
    ),
    Question(
        "should the server reply 304 because the browser already holds an up to "
        "date copy",
        "python/werkzeug/http.py",
        "is_resource_modified",
    ),
    Question(
        "produce a temporary self-signed TLS identity for trying https on a laptop",
        "python/werkzeug/serving.py",
        "generate_adhoc_ssl_pair",
    ),
    Question(
        "automatically relaunch the development process whenever code gets edited",
        "python/werkzeug/_reloader.py",
        "run_with_reloader",
    ),
    Question(
        "read which byte spans of a download the client asked for",
        "python/werkzeug/http.py",
        "parse_range_header",
    ),
    Question(
        "send the visitor to the same address with a / appended at the end",
        "python/werkzeug/utils.py",
        "append_slash_redirect",
    ),
    # Python: requests
    Question(
        "decide if credentials must be removed when the server sends us on to a "
        "different website",
        "python/requests/sessions.py",
        "SessionRedirectMixin.should_strip_auth",
    ),
    Question(
        "work out the character encoding of an API payload from where the zero "
        "octets sit at its start",
        "python/requests/utils.py",
        "guess_json_utf",
    ),
    Question(
        "how much data remains unread in an upload body, whatever kind of object "
        "it comes as",
        "python/requests/utils.py",
        "super_len",
    ),
    Question(
        "decide whether a request goes straight out instead of through the "
        "intermediary, honoring the exclusion list from environment variables",
        "python/requests/utils.py",
        "should_bypass_proxies",
    ),
    # Python: click
    Question(
        "where should a command line tool keep its settings on Windows, macOS "
        "and Linux",
        "python/click/utils.py",
        "get_app_dir",
    ),
    Question(
        "show a web link or document with whatever desktop program handles it",
        "python/click/_termui_impl.py",
        "open_url",
    ),
    Question(
        "estimate how long until the loop finishes and print the remaining duration",
        "python/click/_termui_impl.py",
        "ProgressBar.format_eta",
    ),
    # Python: jinja2
    Question(
        "show a file size as a human readable amount like 13 kB or 4.1 MB",
        "python/jinja2/filters.py",
        "do_filesizeformat",
    ),
    Question(
        "shorten a long text to a maximum number of characters and add an ellipsis",
        "python/jinja2/filters.py",
        "do_truncate",
    ),
    Question(
        "produce placeholder dummy paragraphs of latin filler text",
        "python/jinja2/utils.py",
        "generate_lorem_ipsum",
    ),
    Question(
        "fold paragraphs so that no row exceeds a given column count",
        "python/jinja2/filters.py",
        "do_wordwrap",
    ),
    # JavaScript: npm's dependencies
    Question(
        "convert a duration written like '2 days' or '1h' into milliseconds",
        "javascript/ms/index.js",
        "parse",
    ),
    Question(
        "from a list of candidates pick the entry most similar to a given word",
        "javascript/fastest-levenshtein/mod.js",
        "closest",
    ),
    Question(
        "turn a messy tag like v2 or 1.2.3.4 into a valid three part release number",
        "javascript/semver/functions/coerce.js",
        "coerce",
    ),
    Question(
        "give every logger channel a stable terminal colour derived from its label",
        "javascript/debug/src/common.js",
        "selectColor",
    ),
    Question(
        "may this reply be saved in an intermediary for later reuse at all",
        "javascript/http-cache-semantics/index.js",
        "CachePolicy.storable",
    ),
    Question(
        "order the human locales a browser says it wants, best first",
        "javascript/negotiator/lib/language.js",
        "preferredLanguages",
    ),
    Question(
        "run a callback when the program is about to quit or gets killed",
        "javascript/signal-exit/dist_/cjs/index.js",
        "SignalExit.onExit",
    ),
    Question(
        "retry an async job after waiting longer each time it fails",
        "javascript/exponential-backoff/dist_/backoff.js",
        "backOff",
    ),
    Question(
        "find where a command's executable lives by scanning each folder of the "
        "shell's lookup list",
        "javascript/which/lib/index.js",
        "which",
    ),
    Question(
        "describe how long ago a timestamp was in words like '3 minutes ago'",
        "javascript/tiny-relative-date/lib/factory.js",
        "relativeDateFactory",
    ),
    Question(
        "line up lines of cells into aligned columns of plain text",
        "javascript/text-table/index.js",
        "module.exports",
    ),
    Question(
        "which part changed between two releases: the first, second or third number",
        "javascript/semver/functions/diff.js",
        "diff",
    ),
    Question(
        "delete cached blobs nothing references any more and tally the freed space",
        "javascript/cacache/lib/verify.js",
        "garbageCollect",
    ),
    # More questions, so that one answer moves the MRR less
    Question(
        "format a cache lifetime as a whole number for a header, from a time span",
        "python/werkzeug/http.py",
        "dump_age",
    ),
    Question(
        "read a timestamp in the style mail and web headers use, giving nothing back "
        "when it is malformed",
        "python/werkzeug/http.py",
        "parse_date",
    ),
    Question(
        "make the browser forget a stored token by sending it again already expired",
        "python/werkzeug/sansio/response.py",
        "Response.delete_cookie",
    ),
    Question(
        "decode the posted payload as structured objects when the content kind says so",
        "python/werkzeug/wrappers/request.py",
        "Request.get_json",
    ),
    Question(
        "escape a web address again so every character ends up encoded exactly once, "
        "leaving existing escapes alone",
        "python/requests/utils.py",
        "requote_uri",
    ),
    Question(
        "give a readable handle for a location on disk, or nothing when absent, "
        "without raising",
        "python/jinja2/utils.py",
        "open_if_exists",
    ),
    Question(
        "pick a private temporary folder owned by the current user to hold compiled "
        "templates",
        "python/jinja2/bccache.py",
        "FileSystemBytecodeCache._get_default_cache_dir",
    ),
    Question(
        "reject or pin numbers that fall outside the allowed minimum and maximum",
        "python/click/types.py",
        "_NumberRangeBase.convert",
    ),
    Question(
        "fetch a single keypress from the console without waiting for enter",
        "python/click/_termui_impl.py",
        "getchar",
    ),
    Question(
        "may the current user run this file, judging by its permission bits, owner "
        "and group",
        "javascript/isexe/dist_/commonjs/posix.js",
        "checkMode",
    ),
    Question(
        "ignore permission errors from changing file ownership when not running as "
        "superuser",
        "javascript/graceful-fs/polyfills.js",
        "chownErOk",
    ),
    Question(
        "whether text looks like the short owner/project way to refer to a repository"
        " on the popular code hosting site",
        "javascript/hosted-git-info/lib/from-url.js",
        "isGitHubShorthand",
    ),
    Question(
        "the name used for backwards lookups in DNS of an IPv4 address",
        "javascript/ip-address/dist_/ipv4.js",
        "Address4.reverseForm",
    ),
    Question(
        "drop every entry whose time to live has run out",
        "javascript/lru-cache/dist_/commonjs/index.js",
        "LRUCache.purgeStale",
    ),
    # Go: gorilla/mux, gorilla/websocket, toml, go-humanize, go-version,
    # mapstructure, cron
    Question(
        "tidy a request location so dot and double dot segments and repeated slashes disappear",
        "go/github.com/gorilla/mux/mux.go",
        "cleanPath",
    ),
    Question(
        "tell browsers which web verbs a cross origin endpoint accepts",
        "go/github.com/gorilla/mux/middleware.go",
        "CORSMethodMiddleware",
    ),
    Question(
        "detect that the peer hung up for a reason we did not anticipate",
        "go/github.com/gorilla/websocket/conn.go",
        "IsUnexpectedCloseError",
    ),
    Question(
        "refuse browser handshakes coming from a different site than the one being asked",
        "go/github.com/gorilla/websocket/server.go",
        "checkSameOrigin",
    ),
    Question(
        "compare two strings ignoring upper and lower case, plain english letters only",
        "go/github.com/gorilla/websocket/util.go",
        "equalASCIIFold",
    ),
    Question(
        "build the payload sent when shutting down the socket: a numeric reason followed by an explanation",
        "go/github.com/gorilla/websocket/conn.go",
        "FormatCloseMessage",
    ),
    Question(
        "load a configuration document from disk straight into a struct",
        "go/github.com/BurntSushi/toml/decode.go",
        "DecodeFile",
    ),
    Question(
        "which entries of the document never ended up in the target struct",
        "go/github.com/BurntSushi/toml/meta.go",
        "MetaData.Undecoded",
    ),
    Question(
        "turn 1 into 1st, 2 into 2nd and 3 into 3rd",
        "go/github.com/dustin/go-humanize/ordinals.go",
        "Ordinal",
    ),
    Question(
        "make an english noun refer to many, knowing irregular forms such as children",
        "go/github.com/dustin/go-humanize/english/words.go",
        "PluralWord",
    ),
    Question(
        "describe how long ago some moment was, like 3 days ago or 2 hours from now",
        "go/github.com/dustin/go-humanize/times.go",
        "CustomRelTime",
    ),
    Question(
        "pick the metric multiplier such as kilo or mega that suits a number best",
        "go/github.com/dustin/go-humanize/si.go",
        "ComputeSI",
    ),
    Question(
        "which of two release numbers is newer, minding beta and rc tags",
        "go/github.com/hashicorp/go-version/version.go",
        "Version.Compare",
    ),
    Question(
        "read requirements like >= 1.2, < 2.0 separated by commas",
        "go/github.com/hashicorp/go-version/constraint.go",
        "NewConstraint",
    ),
    Question(
        "convert text such as 5s or 10m into an elapsed span while filling a struct",
        "go/github.com/mitchellh/mapstructure/decode_hooks.go",
        "StringToTimeDurationHookFunc",
    ),
    Question(
        "do not launch a scheduled task again while its previous execution is unfinished",
        "go/github.com/robfig/cron/chain.go",
        "SkipIfStillRunning",
    ),
    Question(
        "which application level dialects did the client ask for during the upgrade",
        "go/github.com/gorilla/websocket/server.go",
        "Subprotocols",
    ),
)
