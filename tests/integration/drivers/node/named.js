// node-postgres: named statements ({name, text, values}) and parameterised
// queries from 20 concurrent clients through PgCrab, every result checked.
// Half the clients give the name 'shared' to a different text, so PgCrab
// must keep each client's names apart. argv: port [user password]
const { Client } = require('pg');
const port = Number(process.argv[2]);
const user = process.argv[3] || 'pgcrab';
const password = process.argv[4] || 'pgcrab';

async function one(i) {
  const c = new Client({
    host: '127.0.0.1', port, user, password, database: 'pgcrab_shard_1',
    connectionTimeoutMillis: 10000, query_timeout: 15000,
  });
  await c.connect();
  const wrong = [];
  const want = (what, got, exp) => { if (got !== exp) wrong.push(`client ${i} ${what}: ${got} != ${exp}`); };
  try {
    const shared = i % 2 === 0
      ? { text: 'SELECT $1::int * 2 AS v', f: (n) => n * 2 }
      : { text: 'SELECT $1::int + 1000 AS v', f: (n) => n + 1000 };
    for (let k = 0; k < 50; k++) {
      const n = i * 1000 + k;
      const r = await c.query({ name: 'double', text: 'SELECT $1::int * 2 AS v', values: [n] });
      want('double', r.rows[0].v, 2 * n);
      const s = await c.query({ name: 'concat', text: "SELECT $1::text || '-' || $2::text AS s", values: ['a' + i, k] });
      want('concat', s.rows[0].s, `a${i}-${k}`);
      const h = await c.query({ name: 'shared', text: shared.text, values: [n] });
      want('shared', h.rows[0].v, shared.f(n));
      const p = await c.query('SELECT count(*)::int AS n FROM generate_series(1, $1::int)', [k + 1]);
      want('parameterised', p.rows[0].n, k + 1);
      if (k % 10 === 0) {
        // an error from a named statement; the client carries on
        let code = null;
        try {
          await c.query({ name: 'div', text: 'SELECT 1 / $1::int AS q', values: [0] });
        } catch (e) {
          code = e.code;
        }
        want('division by zero sqlstate', code, '22012');
        const d = await c.query({ name: 'div', text: 'SELECT 1 / $1::int AS q', values: [1] });
        want('div after the error', d.rows[0].q, 1);
      }
    }
  } finally {
    await c.end();
  }
  return wrong;
}

Promise.all(Array.from({ length: 20 }, (_, i) => one(i)))
  .then((all) => {
    const wrong = all.flat();
    console.log(`${wrong.length === 0 ? 'ok' : 'not ok'} - node-postgres: 20 clients x 50 rounds of named and parameterised queries, ${wrong.length} wrong results${wrong.length ? ': ' + wrong.slice(0, 3).join('; ') : ''}`);
    process.exit(wrong.length === 0 ? 0 : 1);
  })
  .catch((e) => {
    console.log(`not ok - node-postgres: ${e.code || ''} ${e.message}`);
    process.exit(1);
  });
