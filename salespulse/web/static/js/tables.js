// A table that sorts (click a column heading) and filters (a search box and one choice), for the
// stalled deals and the follow-ups. Sorting and filtering survive the live refresh.

import { t } from "./i18n.js";

export class DataTable {
  /**
   * root: an element holding .table-tools (input[type=search], select) and a <table>.
   * columns: [{key, label, text(row) → string, sort(row) → number|string, cell(td, row) optional}]
   * choice: {key(row) → string, options: [[value, labelKey]...]} for the select.
   */
  constructor(root, { columns, rowKey, choice }) {
    this.root = root;
    this.columns = columns;
    this.rowKey = rowKey;
    this.choice = choice;
    this.rows = [];
    this.total = 0;
    this.limit = 0;
    this.sortKey = null;
    this.sortDescending = false;
    this.search = root.querySelector("input[type=search]");
    this.select = root.querySelector("select");
    this.table = root.querySelector("table");
    this.counter = root.querySelector(".count");
    this.search.addEventListener("input", () => this.render());
    this.select.addEventListener("change", () => this.render());
  }

  setRows(rows, total, limit) {
    this.rows = rows;
    this.total = total;
    this.limit = limit;
    this.render();
  }

  sortBy(key) {
    if (this.sortKey === key) this.sortDescending = !this.sortDescending;
    else {
      this.sortKey = key;
      this.sortDescending = false;
    }
    this.render();
  }

  visibleRows() {
    const needle = this.search.value.trim().toLowerCase();
    const chosen = this.select.value;
    let rows = this.rows.filter((row) => !chosen || this.choice.key(row) === chosen);
    if (needle) {
      rows = rows.filter((row) => this.columns.some((column) => column.text(row).toLowerCase().includes(needle)));
    }
    if (this.sortKey) {
      const column = this.columns.find((c) => c.key === this.sortKey);
      const direction = this.sortDescending ? -1 : 1;
      // Stable: rows that tie keep the API's order (most urgent first).
      rows = rows
        .map((row, index) => ({ row, index }))
        .sort((a, b) => {
          const x = column.sort(a.row);
          const y = column.sort(b.row);
          if (x < y) return -direction;
          if (x > y) return direction;
          return a.index - b.index;
        })
        .map((item) => item.row);
    }
    return rows;
  }

  render() {
    const chosen = this.select.value;
    this.select.replaceChildren(new Option(t("table.all"), ""));
    for (const [value, labelKey] of this.choice.options) this.select.append(new Option(t(labelKey), value));
    this.select.value = chosen;
    this.search.placeholder = t("table.filter");

    const head = document.createElement("tr");
    for (const column of this.columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.dataset.key = column.key;
      th.tabIndex = 0;
      th.textContent = t(column.label);
      if (column.numeric) th.classList.add("num");
      th.setAttribute(
        "aria-sort",
        this.sortKey === column.key ? (this.sortDescending ? "descending" : "ascending") : "none",
      );
      th.addEventListener("click", () => this.sortBy(column.key));
      th.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          this.sortBy(column.key);
        }
      });
      head.append(th);
    }
    const thead = document.createElement("thead");
    thead.append(head);

    const tbody = document.createElement("tbody");
    const rows = this.visibleRows();
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.key = this.rowKey(row);
      for (const column of this.columns) {
        const td = document.createElement("td");
        td.dataset.key = column.key;
        if (column.numeric) td.classList.add("num");
        if (column.cell) column.cell(td, row);
        else td.textContent = column.text(row);
        tr.append(td);
      }
      tbody.append(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = this.columns.length;
      td.className = "empty";
      td.textContent = t("table.empty");
      tr.append(td);
      tbody.append(tr);
    }
    this.table.replaceChildren(thead, tbody);
    let summary = t("table.count", { shown: rows.length, total: this.total });
    if (this.total > this.rows.length) summary += " · " + t("table.truncated", { limit: this.limit, total: this.total });
    this.counter.textContent = summary;
  }
}
