#!/bin/busybox sh
# Init of the healthd test VM (see tests/kernel/vm.py); POSIX sh, run by busybox.
#
# Stage 1 (no argument, PID 1 of the initramfs): load the 9p modules, mount the host's / read-only,
# tmpfs on /run and /tmp, the writable checkout share at its host path and the results share
# under /run/healthd/results, then switch_root into the host's /.
# Stage 2 ("stage2", PID 1 of the host's /): load ip_vs, every scheduler, veth and dummy, bring
# loopback up, run the command the host left in results/cmd.sh, write its exit status to
# results/rc and power off.

bb=/bin/busybox
p9="trans=virtio,version=9p2000.L,msize=262144"

say() { echo "healthd-vm: $*"; }
die() {
  say "error: $*"
  $bb sync
  $bb poweroff -f
  exit 1
}

stage1() {
  $bb mount -t proc proc /proc
  $bb mount -t sysfs sysfs /sys
  $bb mount -t devtmpfs devtmpfs /dev
  say "stage1"
  while read -r mod; do
    $bb insmod "/lib/modules/$mod.ko" || die "insmod $mod failed"
  done </lib/modules/order
  $bb mount -t 9p -o "$p9,ro,cache=loose" hostroot /newroot || die "cannot mount the host's /"
  $bb mount -t 9p -o "$p9" results /results || die "cannot mount the results share"
  # vm.env sets HEALTHD_VM_CHECKOUT and HEALTHD_VM_KERNEL_ROOT (host paths, shell-quoted).
  . /results/vm.env || die "cannot read vm.env"
  new=/newroot
  $bb mount -t tmpfs -o mode=0755 tmpfs $new/run || die "cannot mount /run"
  $bb mkdir -p $new/run/healthd/kernel $new/run/healthd/results
  # The kernel cache may live under /tmp: bind it before the tmpfs hides it.
  $bb mount --bind "$new$HEALTHD_VM_KERNEL_ROOT" $new/run/healthd/kernel || die "no kernel dir"
  $bb mount -t tmpfs -o mode=1777 tmpfs $new/tmp || die "cannot mount /tmp"
  $bb mkdir -p "$new$HEALTHD_VM_CHECKOUT"
  $bb mount -t 9p -o "$p9,cache=loose" checkout "$new$HEALTHD_VM_CHECKOUT" || die "cannot mount the checkout"
  $bb mount --move /results $new/run/healthd/results
  $bb cp $bb /init $new/run/healthd/
  for fs in dev proc sys; do $bb mount --move /$fs $new/$fs; done
  exec $bb switch_root $new /run/healthd/busybox sh /run/healthd/init stage2
}

load_modules() {
  # Plain modprobe (and the kernel's own module requests) find the VM's kernel modules.
  printf '#!/bin/sh\nexec /sbin/modprobe -d /run/healthd/kernel "$@"\n' >/run/healthd/modprobe
  $bb chmod 755 /run/healthd/modprobe
  echo /run/healthd/modprobe >/proc/sys/kernel/modprobe
  for mod in ip_vs veth dummy; do
    /run/healthd/modprobe "$mod" || die "modprobe $mod failed"
  done
  for path in "$HEALTHD_VM_MODULES"/kernel/net/netfilter/ipvs/ip_vs_*.ko*; do
    mod=${path##*/}
    mod=${mod%%.ko*}
    case "$mod" in ip_vs_ftp | ip_vs_pe_*) continue ;; esac
    /run/healthd/modprobe "$mod" || say "warning: modprobe $mod failed"
  done
}

stage2() {
  bb=/run/healthd/busybox
  . /run/healthd/results/vm.env
  export HEALTHD_VM=1 HEALTHD_VM_CHECKOUT
  export HEALTHD_VM_MODULES="/run/healthd/kernel/lib/modules/$HEALTHD_VM_KERNEL_VERSION"
  export MODPROBE_OPTIONS="-d /run/healthd/kernel"
  $bb mkdir -p /dev/pts /dev/shm
  $bb mount -t devpts devpts /dev/pts
  $bb mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  load_modules
  /sbin/ip link set lo up || die "cannot bring loopback up"
  $bb hostname healthd-vm
  # Kernel errors (such as IPVS refusing a bad destination, which tests provoke) stay in
  # dmesg; only critical messages still reach the console, between the command's output.
  echo 3 >/proc/sys/kernel/printk
  say "ready"
  cd "$HEALTHD_VM_CHECKOUT" || die "no checkout"
  /bin/sh /run/healthd/results/cmd.sh </dev/null >/dev/console 2>&1
  echo $? >/run/healthd/results/rc
  $bb sync
  say "done"
  $bb poweroff -f
}

if [ "$1" = stage2 ]; then stage2; else stage1; fi
