import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { renderCorefile, UPSTREAM_SERVERS_PLACEHOLDER } from "../components/corefile";
import { NON_DEFAULT_NETWORK, resolvedSettings } from "./support/settingsFixture";

const DEFAULT_COREFILE = `cluster.local:53 {
    errors
    cache {
        success 9984 30
        denial 9984 5
    }
    reload
    loop
    bind 169.254.20.10
    forward . 10.96.0.10 {
        force_tcp
    }
    prometheus :9253
    health 169.254.20.10:9254
}
in-addr.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10
    forward . 10.96.0.10 {
        force_tcp
    }
    prometheus :9253
}
ip6.arpa:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10
    forward . 10.96.0.10 {
        force_tcp
    }
    prometheus :9253
}
.:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
}
`;

/** The server blocks of a Corefile, keyed by their `<zone>:53` header, body lines trimmed. */
function zones(corefile: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of corefile.split("\n")) {
    const header = /^(\S+:53) \{$/.exec(line);
    if (header) {
      current = [];
      out.set(header[1], current);
    } else if (line === "}") {
      current = undefined;
    } else if (line !== "") {
      assert.ok(current, `line outside a server block: ${JSON.stringify(line)}`);
      current.push(line.trim());
    }
  }
  return out;
}

const NON_DEFAULT = resolvedSettings({
  ...NON_DEFAULT_NETWORK,
  cache: { successSize: 1000, successTtl: 60, denialSize: 500, denialTtl: 7, ttl: 45 },
});

describe("renderCorefile", () => {
  it("renders the defaults exactly", () => {
    assert.equal(renderCorefile(resolvedSettings()), DEFAULT_COREFILE);
  });

  it("has the four zones in order", () => {
    for (const s of [resolvedSettings(), NON_DEFAULT]) {
      assert.deepEqual(
        [...zones(renderCorefile(s)).keys()],
        [`${s.clusterDomain}:53`, "in-addr.arpa:53", "ip6.arpa:53", ".:53"],
      );
    }
  });

  it("binds only the local IP, once per zone", () => {
    for (const s of [resolvedSettings(), NON_DEFAULT]) {
      const corefile = renderCorefile(s);
      const binds = corefile.split("\n").filter((line) => line.trim().startsWith("bind"));
      assert.equal(binds.length, 4);
      for (const line of binds) {
        assert.equal(line.trim(), `bind ${s.localDnsIp}`);
      }
      for (const body of zones(corefile).values()) {
        assert.deepEqual(
          body.filter((line) => line.startsWith("bind")),
          [`bind ${s.localDnsIp}`],
        );
      }
    }
  });

  it("leaves no placeholder except the upstream servers, and that one only in the . zone", () => {
    for (const s of [resolvedSettings(), NON_DEFAULT]) {
      const corefile = renderCorefile(s);
      const placeholders = corefile.match(/__PILLAR__[A-Z_]*/g) ?? [];
      assert.deepEqual(placeholders, [UPSTREAM_SERVERS_PLACEHOLDER]);
      assert.ok(!corefile.includes("__PILLAR__DNS__SERVER__"));
      assert.ok(!corefile.includes("__PILLAR__LOCAL__DNS__"));
      assert.ok(!corefile.includes("__PILLAR__CLUSTER__DNS__"));
      assert.ok(!corefile.includes("__PILLAR__DNS__DOMAIN__"));
      assert.deepEqual(
        zones(corefile)
          .get(".:53")
          ?.filter((line) => line.startsWith("forward")),
        [`forward . ${UPSTREAM_SERVERS_PLACEHOLDER}`],
      );
    }
  });

  it("uses non-default domain, IPs, ports and cache sizes", () => {
    const z = zones(renderCorefile(NON_DEFAULT));
    assert.deepEqual(z.get("corp.example:53"), [
      "errors",
      "cache {",
      "success 1000 60",
      "denial 500 7",
      "}",
      "reload",
      "loop",
      "bind 169.254.25.10",
      "forward . 10.233.0.3 {",
      "force_tcp",
      "}",
      "prometheus :9354",
      "health 169.254.25.10:8181",
    ]);
    for (const zone of ["in-addr.arpa:53", "ip6.arpa:53"]) {
      assert.deepEqual(z.get(zone), [
        "errors",
        "cache 45",
        "reload",
        "loop",
        "bind 169.254.25.10",
        "forward . 10.233.0.3 {",
        "force_tcp",
        "}",
        "prometheus :9354",
      ]);
    }
    assert.deepEqual(z.get(".:53"), [
      "errors",
      "cache 45",
      "reload",
      "loop",
      "bind 169.254.25.10",
      "forward . __PILLAR__UPSTREAM__SERVERS__",
      "prometheus :9354",
    ]);
  });

  it("has health only in the cluster zone and prometheus in every zone", () => {
    const corefile = renderCorefile(NON_DEFAULT);
    assert.equal(corefile.match(/^\s*health /gm)?.length, 1);
    assert.equal(corefile.match(/^\s*prometheus :9354$/gm)?.length, 4);
    assert.ok(!corefile.includes("9253"));
    assert.ok(!corefile.includes("8080"));
  });

  it("binds a bare IPv6 local IP and brackets it in health", () => {
    const s = resolvedSettings({
      localDnsIp: "fd00::10",
      clusterDnsIp: "fd00:96::a",
      healthPort: 8181,
    });
    const z = zones(renderCorefile(s));
    const cluster = z.get("cluster.local:53");
    assert.ok(cluster);
    assert.ok(cluster.includes("health [fd00::10]:8181"));
    assert.ok(cluster.includes("forward . fd00:96::a {"));
    for (const body of z.values()) {
      assert.deepEqual(
        body.filter((line) => line.startsWith("bind")),
        ["bind fd00::10"],
      );
    }
  });

  it("indents consistently by four spaces and ends with one newline", () => {
    const corefile = renderCorefile(NON_DEFAULT);
    assert.ok(corefile.endsWith("}\n") && !corefile.endsWith("\n\n"));
    for (const line of corefile.split("\n")) {
      const indent = /^ */.exec(line)?.[0].length ?? 0;
      assert.equal(indent % 4, 0, `indent of ${JSON.stringify(line)}`);
      assert.ok(!line.includes("\t"));
      assert.equal(line, line.trimEnd());
    }
  });
});
