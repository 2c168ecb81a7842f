import os, sys, subprocess, time, re
HZ = os.sysconf('SC_CLK_TCK')
def cpu():
    t = {'postgres':0,'pgpool':0}
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            s = open(f'/proc/{pid}/stat').read()
        except OSError: continue
        comm = s[s.index('(')+1:s.rindex(')')]
        f = s[s.rindex(')')+2:].split()
        v = (int(f[11]) + int(f[12])) / HZ
        for k in t:
            if comm.startswith(k): t[k] += v
    return t
def busy():
    f = open('/proc/stat').readline().split()[1:]
    f = list(map(int, f)); return sum(f) - f[3] - f[4], sum(f)
args = sys.argv[1:]
a, b0 = cpu(), busy(); t0 = time.time()
out = subprocess.run(args, capture_output=True, text=True).stdout + ''
b, b1 = cpu(), busy(); dt = time.time() - t0
tps = float(re.search(r'tps = ([\d.]+)', out).group(1))
fail = re.search(r'number of failed transactions: (\d+)', out)
n = tps * dt
print(f"{' '.join(args[-1:])}: tps {tps:.0f} pg {1e3*(b['postgres']-a['postgres'])/n:.3f} ms/tx pgpool {1e3*(b['pgpool']-a['pgpool'])/n:.3f} ms/tx machine {2*(b1[0]-b0[0])/(b1[1]-b0[1]):.2f} cores failed {fail.group(1) if fail else '?'}")
