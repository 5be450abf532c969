# migready facts: run on a compute host as root with `sh -s` (POSIX sh, no bashisms).
# Each fact's output and errors go to files in a temporary directory (one process per
# fact: the command itself). At the end it prints one header line per fact, in order,
#   @@MIGREADY-SIZED@@ <name> <exit status> <stdout bytes> <stderr bytes>
# then the line @@MIGREADY-DATA@@, then every fact's stdout and stderr, raw, in the same
# order (sizes from one `stat`, contents from one `cat`): no per-fact encoding processes.
# A missing file or command is a fact too: it shows as a non-zero status.
# Nothing here changes the host.
LC_ALL=C
export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
t=$(mktemp -d /tmp/migready-facts.XXXXXX) || exit 1
trap 'rm -rf "$t"' EXIT

n=0
fact() { # fact NAME COMMAND...; leaves its exit status in $rc, its output file in $out
    n=$((n + 1)); name=$1; shift
    "$@" >"$t/$n.o" 2>"$t/$n.e" </dev/null
    rc=$?
    out=$t/$n.o
    printf '%s %s\n' "$name" "$rc" >>"$t/index"
}
file() { # file NAME PATH; a symbolic link PATH also gets link:NAME, its target
    if [ -e "$2" ]; then fact "$1" cat "$2"
    else
        n=$((n + 1))
        : >"$t/$n.o"
        printf 'no such file: %s' "$2" >"$t/$n.e"
        printf '%s 127\n' "$1" >>"$t/index"
    fi
    # fix edits the target, not the link (a rename over the path would replace the link).
    if [ -L "$2" ]; then fact "link:$1" readlink -f "$2"; fi
}
has() { command -v "$1" >/dev/null 2>&1; }

fact id id -u
fact os_release cat /etc/os-release
fact hostname hostname
fact hostname_fqdn hostname -f
fact resolve_self getent ahosts "$(hostname)"
fact etc_hosts cat /etc/hosts
fact ip_addr ip -o addr show

# libvirt and QEMU
fact libvirtd_version libvirtd --version
fact virtqemud_version virtqemud --version
for q in qemu-system-x86_64 /usr/libexec/qemu-kvm qemu-kvm; do
    if has "$q" || [ -x "$q" ]; then fact qemu_version "$q" --version; break; fi
done
fact units systemctl show --no-pager \
    -p Id -p LoadState -p ActiveState -p SubState -p UnitFileState -p MainPID \
    -p Environment -p EnvironmentFiles -p ExecStart -p Listen -p FragmentPath -p DropInPaths \
    libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket \
    libvirtd-tcp.socket libvirtd-tls.socket \
    virtproxyd.service virtproxyd.socket virtproxyd-tcp.socket virtproxyd-tls.socket \
    virtqemud.service virtqemud.socket \
    nova-compute.service openstack-nova-compute.service \
    firewalld.service iptables.service netfilter-persistent.service nftables.service
file libvirtd_conf /etc/libvirt/libvirtd.conf
file virtproxyd_conf /etc/libvirt/virtproxyd.conf
file qemu_conf /etc/libvirt/qemu.conf
# transport tls: the certificates libvirt reads (never a private key).
file pki_cacert /etc/pki/CA/cacert.pem
file pki_servercert /etc/pki/libvirt/servercert.pem
file pki_clientcert /etc/pki/libvirt/clientcert.pem
file pki_qemu_cacert /etc/pki/qemu/ca-cert.pem
file pki_qemu_servercert /etc/pki/qemu/server-cert.pem
file pki_qemu_clientcert /etc/pki/qemu/client-cert.pem
# Of the private keys only a sha256 each ("HASH PATH" lines; fix refuses to replace a
# key that changed since): never their content.
fact pki_keys sh -c 'for k in /etc/pki/libvirt/private/serverkey.pem /etc/pki/libvirt/private/clientkey.pem /etc/pki/qemu/server-key.pem /etc/pki/qemu/client-key.pem; do if [ -f "$k" ]; then h=$(sha256sum <"$k") || exit 1; printf "%s %s\n" "${h%% *}" "$k"; fi; done'
# The group QEMU runs as (Debian libvirt-qemu, RHEL qemu): its keys are readable by it.
fact qemu_group getent group libvirt-qemu qemu
# The environment files the libvirt daemons really read, as systemd reports them.
# (Read from a file, not a pipe: a piped loop runs in a subshell, and its facts would
# not be counted.)
for unit in libvirtd.service virtproxyd.service; do
    systemctl show -p EnvironmentFiles --value "$unit" >"$t/envfiles" 2>/dev/null
    while read -r path rest; do
        [ -n "$path" ] || continue
        file "envfile:$unit:$path" "$path"
    done <"$t/envfiles"
done
fact capabilities virsh -c qemu:///system capabilities
fact sysinfo_uuid cat /sys/class/dmi/id/product_uuid
fact machine_id cat /etc/machine-id

# Network and firewall
fact listen ss -Hltn
fact iptables_save iptables-save
fact ip6tables_save ip6tables-save
# Where iptables is the nf_tables variant, rules made with the legacy backend still
# filter but iptables-save does not show them.
has iptables-legacy-save && fact iptables_legacy_save iptables-legacy-save
has ip6tables-legacy-save && fact ip6tables_legacy_save ip6tables-legacy-save
# nftables: the ruleset as JSON (judged) and as text with handles (the rules' words
# for evidence), and the files nftables.service loads: the one its ExecStart names
# (`nft -f FILE`, else /etc/nftables.conf) and those it includes, nested (relative
# paths from /etc, nft's default include path; at most 32 files).
if has nft; then
    fact nft_json nft -j list ruleset
    fact nft_ruleset nft -a list ruleset
    nftconf=$(systemctl show -p ExecStart --value nftables.service 2>/dev/null | sed -n 's/.*argv\[\]=[^;]* -f \([^ ;]*\).*/\1/p' | head -n 1)
    printf '%s\n' "${nftconf:-/etc/nftables.conf}" >"$t/nftq"
    k=0 nftseen=''
    while [ "$k" -lt 32 ] && IFS= read -r f; do
        case " $nftseen " in *" $f "*) continue ;; esac
        nftseen="$nftseen $f"
        [ -f "$f" ] || continue
        k=$((k + 1))
        file "nftconf:$k:$f" "$f"
        sed -n 's/^[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" >"$t/nftinc"
        while IFS= read -r inc; do
            case $inc in /*) ;; *) inc=/etc/$inc ;; esac
            # shellcheck disable=SC2086 # globbing wanted: include "/etc/nftables.d/*.nft"
            for g in $inc; do [ -f "$g" ] && printf '%s\n' "$g" >>"$t/nftq"; done
        done <"$t/nftinc"
    done <"$t/nftq"
fi
# firewalld, when it runs: every zone, runtime and permanent (one firewall-cmd call
# each: it is a Python program, slow to start), and the definitions of the services
# the zones name (/etc/firewalld/services overrides /usr/lib/firewalld/services).
if has firewall-cmd; then
    fact firewalld_state firewall-cmd --state
    if [ "$rc" = 0 ]; then
        fact firewalld_zones firewall-cmd --list-all-zones
        svcs=$(sed -n 's/^[[:space:]]*services:[[:space:]]*//p' "$out")
        fact firewalld_zones_permanent firewall-cmd --permanent --list-all-zones
        svcs="$svcs $(sed -n 's/^[[:space:]]*services:[[:space:]]*//p' "$out")"
        file firewalld_conf /etc/firewalld/firewalld.conf
        seen='' paths=''
        for s in $svcs; do
            case " $seen " in *" $s "*) continue ;; esac
            seen="$seen $s"
            for d in /etc/firewalld/services /usr/lib/firewalld/services; do
                if [ -e "$d/$s.xml" ]; then paths="$paths $d/$s.xml"; break; fi
            done
        done
        # shellcheck disable=SC2086 # word splitting wanted: one path per word
        [ -z "$paths" ] || fact firewalld_services grep -H '' $paths
    fi
fi
for f in /etc/sysconfig/iptables /etc/iptables/rules.v4 /etc/sysconfig/ip6tables /etc/iptables/rules.v6; do
    if [ -e "$f" ]; then file "persist:$f" "$f"; fi
done

# Nova: the files nova-compute reads, in the order oslo.config reads them (later values
# win), as records novaconf:K:PATH (K: the order). Its command line is the running
# process's (/proc/PID/cmdline of the unit's main PID), else the unit's ExecStart when
# that runs nova-compute itself (not a wrapper such as Debian's /etc/init.d/nova-compute
# systemd-start); else none (nova_args_source says which). oslo.config: without any
# --config-file, nova.conf then nova-compute.conf, each from the first of /etc/nova and
# /etc that has it, come first; without any --config-dir, the *.conf of nova.conf.d and
# nova-compute.conf.d (found the same way) next; then the command line's --config-file
# files and --config-dir directories' *.conf (sorted), in command-line order. (The
# service user's home directory, searched first by oslo.config, is not.)
novaunit='' novasrc=''
: >"$t/novaargs"
for u in nova-compute.service openstack-nova-compute.service; do
    if [ "$(systemctl show -p LoadState --value "$u" 2>/dev/null)" = loaded ]; then novaunit=$u; break; fi
done
if [ -n "$novaunit" ]; then
    pid=$(systemctl show -p MainPID --value "$novaunit" 2>/dev/null)
    case $pid in ''|0|*[!0-9]*) pid='' ;; esac
    if [ -n "$pid" ] && tr '\000' '\n' <"/proc/$pid/cmdline" >"$t/novaargs" 2>/dev/null && grep -q 'nova-compute' "$t/novaargs"; then
        novasrc="pid $pid $novaunit"
    else
        systemctl show -p ExecStart --value "$novaunit" 2>/dev/null | sed -n 's/.*argv\[\]=\([^;]*\) ;.*/\1/p' | head -n 1 | tr ' ' '\n' >"$t/novaargs"
        if grep -q -e '^nova-compute$' -e 'bin/nova-compute$' "$t/novaargs"; then
            novasrc="ExecStart $novaunit"
        else
            novasrc="wrapper $novaunit $(head -n 1 "$t/novaargs")"
            : >"$t/novaargs"
        fi
    fi
fi
fact nova_args_source printf '%s' "${novasrc:-none}"
fact nova_args cat "$t/novaargs"
k=0
: >"$t/novafiles"
novafile() {
    case $1 in
        *[[:space:]]*) printf '%s\n' "$1" >>"$t/novaskipped"; return ;;
    esac
    k=$((k + 1))
    file "novaconf:$k:$1" "$1"
    printf '%s\n' "$1" >>"$t/novafiles"
}
novadir() { # every *.conf of a directory, sorted (C locale: as Python sorts them)
    case $1 in *[[:space:]]*) printf '%s\n' "$1" >>"$t/novaskipped"; return ;; esac
    fact "novadir:$1" ls -1 "$1"
    for g in "$1"/*.conf; do if [ -f "$g" ]; then novafile "$g"; fi; done
}
if ! grep -q -e '^--config-file$' -e '^--config-file=' "$t/novaargs"; then
    for b in nova nova-compute; do
        for d in /etc/nova /etc; do if [ -e "$d/$b.conf" ]; then novafile "$d/$b.conf"; break; fi; done
    done
fi
if ! grep -q -e '^--config-dir$' -e '^--config-dir=' "$t/novaargs"; then
    for b in nova nova-compute; do
        for d in /etc/nova /etc; do if [ -d "$d/$b.conf.d" ]; then novadir "$d/$b.conf.d"; break; fi; done
    done
fi
next=''
while IFS= read -r a; do
    case $next in
        file) novafile "$a"; next=''; continue ;;
        dir) novadir "$a"; next=''; continue ;;
    esac
    case $a in
        --config-file) next=file ;;
        --config-file=*) novafile "${a#--config-file=}" ;;
        --config-dir) next=dir ;;
        --config-dir=*) novadir "${a#--config-dir=}" ;;
    esac
done <"$t/novaargs"
if [ -s "$t/novaskipped" ]; then fact nova_skipped cat "$t/novaskipped"; fi
if has dpkg-query; then fact nova_version dpkg-query -W -f '${Version}' nova-common
elif has rpm; then fact nova_version rpm -q --qf '%{VERSION}-%{RELEASE}' openstack-nova-common
fi
# [DEFAULT] instances_path: the last value in the files above, in their order.
ipath=''
while IFS= read -r f; do
    v=$(awk '/^[[:space:]]*\[/ { s = $0; gsub(/[][[:space:]]/, "", s) }
        s == "DEFAULT" && /^[[:space:]]*instances_path[[:space:]]*=/ { sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); v = $0 }
        END { print v }' "$f" 2>/dev/null)
    if [ -n "$v" ]; then ipath=$v; fi
done <"$t/novafiles"
[ -n "$ipath" ] || ipath=/var/lib/nova/instances
fact instances_path printf '%s' "$ipath"
fact instances_df df -PB1 "$ipath"
fact instances_mount findmnt -n -o FSTYPE,SOURCE,TARGET -T "$ipath"
fact meminfo cat /proc/meminfo
fact nproc nproc
fact date date +%s

# What earlier fix runs left (templates/txn.py journals), and whether one runs now.
fact boot_id cat /proc/sys/kernel/random/boot_id
if [ -d /var/lib/migready/txn ]; then
    fact txn_journals sh -c 'for j in /var/lib/migready/txn/*/journal.jsonl; do [ -f "$j" ] || continue; printf "@@ %s\n" "$j"; cat "$j"; done'
    # Each run's unit has a name of its own (migready-fix-RUN.service; older runners:
    # migready-fix.service): "active" when one of them is.
    fact txn_unit sh -c 'systemctl list-units --state=active --plain --no-legend "migready-fix*.service" | grep -q . && echo active || echo inactive'
fi

# Headers (sizes of every file in one call), then the data (every file in one call).
i=1
set --
while [ "$i" -le "$n" ]; do set -- "$@" "$t/$i.o" "$t/$i.e"; i=$((i + 1)); done
stat -c %s "$@" >"$t/sizes" || exit 1
exec 3<"$t/sizes"
while read -r name rc; do
    read -r osize <&3
    read -r esize <&3
    printf '@@MIGREADY-SIZED@@ %s %s %s %s\n' "$name" "$rc" "$osize" "$esize"
done <"$t/index"
exec 3<&-
printf '@@MIGREADY-DATA@@\n'
cat "$@"
