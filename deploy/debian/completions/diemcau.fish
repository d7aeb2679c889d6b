# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_diemcau_global_optspecs
    string join \n h/help V/version
end

function __fish_diemcau_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_diemcau_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_diemcau_using_subcommand
    set -l cmd (__fish_diemcau_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c diemcau -n "__fish_diemcau_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c diemcau -n "__fish_diemcau_needs_command" -s V -l version -d 'Print version'
complete -c diemcau -n "__fish_diemcau_needs_command" -f -a "run" -d 'Run the daemon (without --config: the embedded demo inventory on loopback)'
complete -c diemcau -n "__fish_diemcau_needs_command" -f -a "demo" -d 'The daemon against an emulated national network with realistic faults, in a private network namespace; the web port opens on this machine (default http://127.0.0.1:9808/)'
complete -c diemcau -n "__fish_diemcau_needs_command" -f -a "check" -d 'Validate a config and its inventory; print endpoints per province and carrier (exit 0 valid, 78 not)'
complete -c diemcau -n "__fish_diemcau_needs_command" -f -a "probe" -d 'Send one round of echo requests to ADDRESS and print the figures (exit 0 answered, 1 not)'
complete -c diemcau -n "__fish_diemcau_needs_command" -f -a "report" -d 'Reports from the ledger'
complete -c diemcau -n "__fish_diemcau_needs_command" -f -a "inventory" -d 'Inventory tools'
complete -c diemcau -n "__fish_diemcau_using_subcommand run" -s c -l config -l config.file -d 'The TOML config file (default: the embedded demo config)' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand run" -l web.listen-address -d 'Serve on this address instead of [web] listen_address; repeat it to serve on several' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand run" -l log.level -r
complete -c diemcau -n "__fish_diemcau_using_subcommand run" -l log.format -r -f -a "logfmt\t'key=value pairs, one event per line (`text` is accepted for compatibility)'
json\t'One JSON object per line'"
complete -c diemcau -n "__fish_diemcau_using_subcommand run" -l web.config.file -d 'exporter-toolkit web configuration (TLS, basic auth), as for node_exporter' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand run" -l shard -d 'Probe shard I (0-based) of N: replaces [shard] index, count and index_from_hostname' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand run" -l private-netns -d 'Probe from a private network namespace of its own (tests, benchmarks, lab); the web port stays in the caller\'s namespace'
complete -c diemcau -n "__fish_diemcau_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -s c -l config -l config.file -d 'Probe settings and inventory (default: embedded settings, generated inventory)' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -l scenario -d 'Emulator scenario TOML (default: one generated from the inventory)' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -l truth -d 'Write the emulator\'s ground truth (JSON lines) here' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -l web.listen-address -d 'Serve on this address instead of [web] listen_address; repeat it to serve on several' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -l web.config.file -d 'exporter-toolkit web configuration (TLS, basic auth)' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -l era -d 'Era of the generated inventory' -r -f -a "2021\t'63 provinces with districts (2021: ~10,600 communes)'
2025\t'34 provinces, no districts (since July 2025: 3,321 communes)'"
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -l endpoints -d 'Endpoints in the generated inventory (default: the era\'s commune count)' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -l log.level -r
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -l log.format -r -f -a "logfmt\t'key=value pairs, one event per line (`text` is accepted for compatibility)'
json\t'One JSON object per line'"
complete -c diemcau -n "__fish_diemcau_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c diemcau -n "__fish_diemcau_using_subcommand check" -s c -l config -l config.file -d 'The TOML config file' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand check" -l shard -d 'Check as shard I (0-based) of N: count that shard\'s share, as `run --shard` would' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand check" -s h -l help -d 'Print help'
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l count -r
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l spacing -r
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l timeout -r
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l socket -r -f -a "auto\t''
dgram\t''
raw\t''"
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l kind -d 'What to probe: icmp (echo), or a service-check kind: tcp (connect), http (GET), sip (OPTIONS). Default: http for an http(s) URL, sip for a sip(s) URI, icmp otherwise' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l port -d 'Port for tcp/http/sip (defaults: http 80, https 443, sip 5060, sips 5061)' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l path -d 'http: request path' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l ca-file -d 'http, sip over TLS: PEM file of CA certificates trusted besides the bundled roots' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l transport -d 'sip: transport' -r -f -a "udp\t''
tcp\t''
tls\t''"
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l set -d 'Any other setting of the kind, as in a [check.NAME] table: --set user=ping' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l https -d 'http: use TLS'
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l insecure -d 'http, sip over TLS: accept any certificate (self-signed devices)'
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -l private-netns
complete -c diemcau -n "__fish_diemcau_using_subcommand probe" -s h -l help -d 'Print help'
complete -c diemcau -n "__fish_diemcau_using_subcommand report; and not __fish_seen_subcommand_from sla" -s h -l help -d 'Print help'
complete -c diemcau -n "__fish_diemcau_using_subcommand report; and not __fish_seen_subcommand_from sla" -f -a "sla" -d 'Availability per group for a period, planned maintenance and monitor downtime excluded'
complete -c diemcau -n "__fish_diemcau_using_subcommand report; and __fish_seen_subcommand_from sla" -s c -l config -l config.file -d 'The TOML config file; its [store] path is the ledger read' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand report; and __fish_seen_subcommand_from sla" -l period -d 'A calendar month (2026-11) in [report] time_zone, or FROM..TO (dates or RFC 3339)' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand report; and __fish_seen_subcommand_from sla" -l by -d 'Grouping: any of province, district, carrier, comma-separated; empty = national' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand report; and __fish_seen_subcommand_from sla" -l format -d 'csv, worst-csv, json, html or xlsx' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand report; and __fish_seen_subcommand_from sla" -s o -l out -d 'Write here instead of standard output' -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand report; and __fish_seen_subcommand_from sla" -s h -l help -d 'Print help'
complete -c diemcau -n "__fish_diemcau_using_subcommand inventory; and not __fish_seen_subcommand_from generate" -s h -l help -d 'Print help'
complete -c diemcau -n "__fish_diemcau_using_subcommand inventory; and not __fish_seen_subcommand_from generate" -f -a "generate" -d 'Write a national-size example inventory (2025: the real 3,321 communes, no districts)'
complete -c diemcau -n "__fish_diemcau_using_subcommand inventory; and __fish_seen_subcommand_from generate" -l era -r -f -a "2021\t'63 provinces with districts (2021: ~10,600 communes)'
2025\t'34 provinces, no districts (since July 2025: 3,321 communes)'"
complete -c diemcau -n "__fish_diemcau_using_subcommand inventory; and __fish_seen_subcommand_from generate" -l endpoints -d 'Endpoints in all (default: the era\'s commune count)' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand inventory; and __fish_seen_subcommand_from generate" -l first-address -d 'First IPv4 address; the rest follow. Keep to loopback (127.0.0.0/8) unless the addresses exist only in a network namespace of yours' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand inventory; and __fish_seen_subcommand_from generate" -l units -d 'Take the communes from this units CSV instead (e.g. a 2021 list with districts: province_code,province_name,district_name,commune_code,commune_name,…)' -r
complete -c diemcau -n "__fish_diemcau_using_subcommand inventory; and __fish_seen_subcommand_from generate" -s o -l out -r -F
complete -c diemcau -n "__fish_diemcau_using_subcommand inventory; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help (see more with \'--help\')'
