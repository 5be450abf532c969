# Sourced by the bench scripts: the lab test guest of `migready validate`
# (templates/guest.sh, 64 MiB RAM, 64 MiB qcow2 disk) driven by hand, for a plain
# virsh migration of the same layout. Needs `lab HOST CMD` (lab.sh ssh) defined first.

guest() { # guest ACTION NAME HOST [XML]
    local vars="ACTION=$1
NAME='$2'
INSTANCES='/var/lib/nova/instances'
SIZE_MIB=64
PATTERN=0xab
OFFSET=8388608
LENGTH=2097152"
    [[ -z ${4:-} ]] || vars+=$'\n'"XML_B64=$(printf '%s' "$4" | base64 -w0)"
    printf '%s\n' "$vars" | cat - templates/guest.sh | lab "$3" sh -s
}
machine=pc-i440fx-7.2   # what validate picks for bookworm and trixie hosts alike
