import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CopyRefused, copyHeader, copyLine, parseCopy } from "./copy.js";

describe("COPY … TO STDOUT", () => {
  test("finds the query or table and PostgreSQL's options, in both syntaxes", () => {
    assert.equal(parseCopy("SELECT 1"), null);
    const psqlStyle = parseCopy(
      "COPY ( select event, count(*) from events group by 1 ) TO STDOUT csv header",
    );
    assert.deepEqual(psqlStyle, {
      query: "select event, count(*) from events group by 1",
      format: "csv",
      header: true,
      delimiter: ",",
      nullText: "",
      quote: '"',
      escape: '"',
      forceQuote: [],
    });
    const modern = parseCopy(
      "copy (select ')' as p) to stdout with (format csv, header false, delimiter ';', null 'NA', force_quote (P, \"Q\"));",
    );
    assert.equal(modern?.query, "select ')' as p");
    assert.equal(modern?.delimiter, ";");
    assert.equal(modern?.nullText, "NA");
    assert.equal(modern?.header, false);
    assert.deepEqual(modern?.forceQuote, ["p", "Q"]);
    const table = parseCopy('COPY main."events" (event, ts) TO STDOUT');
    assert.equal(table?.query, 'SELECT event, ts FROM main."events"');
    assert.equal(table?.format, "text");
    assert.equal(table?.nullText, "\\N");
    assert.equal(table?.delimiter, "\t");
    const legacy = parseCopy("COPY events TO STDOUT WITH DELIMITER AS '|' NULL AS '' CSV FORCE QUOTE * ");
    assert.equal(legacy?.query, "SELECT * FROM events");
    assert.equal(legacy?.delimiter, "|");
    assert.equal(legacy?.nullText, "");
    assert.equal(legacy?.forceQuote, "*");
  });

  test("refuses COPY FROM, server files, programs, binary and unknown options with the reason", () => {
    const refusals: [string, RegExp][] = [
      ["COPY events FROM STDIN", /COPY FROM is not supported.*sluice load/],
      ["COPY (SELECT 1) TO '/tmp/x.csv'", /only write to STDOUT.*\\copy/],
      ["COPY (SELECT 1) TO PROGRAM 'rm -rf /'", /only write to STDOUT/],
      ["COPY (SELECT 1) TO STDOUT (FORMAT binary)", /binary format is not supported/],
      ["COPY (SELECT 1) TO STDOUT (FORMAT parquet)", /format "parquet" not recognized/],
      ["COPY (SELECT 1) TO STDOUT (FREEZE)", /option "freeze" is not supported/],
      ["COPY (SELECT 1) TO STDOUT (DELIMITER '||')", /single one-byte character/],
      ["COPY (SELECT 1) TO STDOUT (QUOTE '''')", /only in CSV mode/],
      ["COPY (SELECT 1) TO STDOUT (HEADER maybe)", /Boolean value/],
      ["COPY (SELECT 1 TO STDOUT", /unbalanced parentheses/],
      ["COPY TO STDOUT", /needs a table or a \(query\)/],
    ];
    for (const [sql, reason] of refusals) {
      assert.throws(
        () => parseCopy(sql),
        (error: Error) => error instanceof CopyRefused && reason.test(error.message),
        sql,
      );
    }
  });

  test("writes CSV as PostgreSQL does: quotes only where needed, NULL apart from the empty string", () => {
    const csv = parseCopy("COPY (SELECT 1) TO STDOUT (FORMAT csv, HEADER)");
    assert.ok(csv);
    const columns = ["name", "note, with comma"];
    assert.equal(copyHeader(columns, csv), 'name,"note, with comma"\n');
    assert.equal(copyLine(["plain", null], csv, columns), "plain,\n");
    assert.equal(copyLine(["", 'say "hi"'], csv, columns), '"","say ""hi"""\n');
    assert.equal(copyLine(["two\nlines", "\\."], csv, columns), '"two\nlines","\\."\n');
    const forced = parseCopy("COPY (SELECT 1) TO STDOUT (FORMAT csv, FORCE_QUOTE (name), ESCAPE '\\')");
    assert.ok(forced);
    assert.equal(copyLine(["a", 'b"c'], forced, columns), '"a","b\\"c"\n');
  });

  test("writes the text format with backslash escapes and \\N for NULL", () => {
    const text = parseCopy("COPY (SELECT 1) TO STDOUT");
    assert.ok(text);
    assert.equal(
      copyLine(["tab\there", null, "back\\slash\r\n"], text, []),
      "tab\\there\t\\N\tback\\\\slash\\r\\n\n",
    );
  });
});
