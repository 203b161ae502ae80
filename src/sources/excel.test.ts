import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import ExcelJS from "exceljs";
import { readSheet } from "./excel.js";
import { tempSources } from "./test-support.js";

type Sources = Awaited<ReturnType<typeof tempSources>>;

/**
 * A workbook as finance exports it: a cover sheet first, then the data sheet with a
 * merged title, a subtitle, a blank row, an empty first column, a header merged over two
 * rows, a blank row inside the data, a region label merged across a row, a totals row
 * and a note under the table.
 */
async function messyWorkbook(path: string): Promise<void> {
  const workbook = new ExcelJS.Workbook();
  const cover = workbook.addWorksheet("Cover");
  cover.getCell("A1").value = "Quarterly report";
  const sheet = workbook.addWorksheet("Sales");
  sheet.getCell("B1").value = "Sales by store, 2026";
  sheet.mergeCells("B1:H1");
  sheet.getCell("B2").value = "Exported by finance";
  sheet.getCell("B4").value = "Store";
  sheet.mergeCells("B4:B5");
  sheet.getCell("C4").value = "Opened";
  sheet.mergeCells("C4:C5");
  sheet.getCell("D4").value = "Q1";
  sheet.mergeCells("D4:E4");
  sheet.getCell("F4").value = "Q2";
  sheet.mergeCells("F4:G4");
  sheet.getCell("H4").value = "Manager's Note";
  sheet.mergeCells("H4:H5");
  // ExcelJS: a dense array starts at column A.
  sheet.getRow(5).values = [null, null, null, "Revenue (€)", "Units", "Revenue (€)", "Units"];
  sheet.getCell("B6").value = "North";
  sheet.mergeCells("B6:H6");
  sheet.getRow(7).values = [
    null,
    "Berlin Mitte",
    new Date(Date.UTC(2019, 2, 1)),
    1200.5,
    30,
    1300.25,
    31,
    "flagship",
  ];
  sheet.getRow(9).values = [
    null,
    "Hamburg",
    new Date(Date.UTC(2021, 5, 15)),
    800,
    20,
    { formula: "D9*1.1", result: 880 },
    22,
  ];
  sheet.getRow(10).values = [null, "Total", null, 2000.5, 50, 2180.25, 53];
  sheet.getRow(12).values = [null, "Source: ERP export, figures in EUR"];
  await workbook.xlsx.writeFile(path);
}

describe("Excel workbooks", () => {
  let sources: Sources;
  let path: string;
  before(async () => {
    sources = await tempSources();
    path = join(sources.dataDir, "sales.xlsx");
    await messyWorkbook(path);
  });
  after(async () => {
    await sources.close();
  });

  test("the table is found and cleaned: title, blanks, two-row merged header, section, totals and notes go", async () => {
    const table = await readSheet(path, "Sales");
    assert.deepEqual(table.headers, [
      "Store",
      "Opened",
      "Q1 Revenue (€)",
      "Q1 Units",
      "Q2 Revenue (€)",
      "Q2 Units",
      "Manager's Note",
    ]);
    assert.deepEqual(table.rows, [
      { sheetRow: 7, values: ["Berlin Mitte", "2019-03-01", "1200.5", "30", "1300.25", "31", "flagship"] },
      { sheetRow: 9, values: ["Hamburg", "2021-06-15", "800", "20", "880", "22", null] },
    ]);
  });

  test("a named sheet loads with snake_case columns, inferred types and the headers as descriptions", async () => {
    const outcome = await sources.loader.load(path, { table: "stores", sheet: "Sales", origin: "cli" });
    assert.equal(outcome.message, "loaded 2 rows from sales.xlsx into stores");
    assert.deepEqual(await sources.types("stores"), {
      store: "VARCHAR",
      opened: "DATE",
      q1_revenue: "DECIMAL(18,1)",
      q1_units: "INTEGER",
      q2_revenue: "DECIMAL(18,2)",
      q2_units: "INTEGER",
      manager_s_note: "VARCHAR",
    });
    const table = (await sources.catalog.tables()).find((def) => def.name === "stores");
    assert.equal(table?.columns[2]?.description, "Q1 Revenue (€)");
    assert.deepEqual(
      await sources.rows(
        "SELECT store, opened::VARCHAR, q1_revenue + q2_revenue, q2_units FROM stores ORDER BY store",
      ),
      [
        ["Berlin Mitte", "2019-03-01", 2500.75, 31],
        ["Hamburg", "2021-06-15", 1680, 22],
      ],
    );
  });

  test("the first sheet is the default; a sheet that does not exist is named with the ones that do", async () => {
    const cover = await sources.loader.load(path, { table: "cover", origin: "cli" });
    assert.equal(cover.run.status, "loaded", cover.message);
    assert.deepEqual(await sources.rows("SELECT * FROM cover"), []);
    const missing = await sources.loader.load(path, { table: "nope", sheet: "Sheet9", origin: "cli" });
    assert.equal(
      missing.message,
      'sales.xlsx rejected: no sheet named "Sheet9" in the workbook (sheets: Cover, Sales)',
    );
  });

  test("a bad value is reported with its sheet row", async () => {
    const inventory = async (name: string, units: (number | string)[]) => {
      const workbook = new ExcelJS.Workbook();
      const sheet = workbook.addWorksheet("Data");
      sheet.getCell("A1").value = "Inventory";
      sheet.getRow(3).values = [null, "Store", "Units"];
      units.forEach((value, i) => {
        sheet.getRow(4 + i).values = [null, `Store ${i + 1}`, value];
      });
      const file = join(sources.dataDir, name);
      await workbook.xlsx.writeFile(file);
      return sources.loader.load(file, { table: "inventory", origin: "cli" });
    };
    assert.equal((await inventory("monday.xlsx", [5, 7])).run.status, "loaded");
    const outcome = await inventory("tuesday.xlsx", [4, "n/a"]);
    assert.equal(
      outcome.message,
      'tuesday.xlsx rejected: column "units" is INTEGER in table inventory, but row 5 of sheet "Data" has "n/a", which is not an integer',
    );
    assert.deepEqual(await sources.types("inventory"), { store: "VARCHAR", units: "INTEGER" });
  });
});
