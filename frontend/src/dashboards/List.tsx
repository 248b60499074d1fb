// The list of dashboards.

import { Link } from "react-router-dom";

import { Can } from "../components/Can";
import { Card } from "../components/common";
import { type Column, ResourceTable } from "../components/ResourceTable";
import type { Dashboard } from "../widgets/model";

export function DashboardsPage() {
  const columns: Column<Dashboard>[] = [
    { key: "title", label: "Title", render: (d) => `${d.favorite ? "★ " : ""}${d.title || d.id}` },
    { key: "description", label: "Description", render: (d) => d.description },
    { key: "widgets", label: "Widgets", sortable: false, render: (d) => String(d.widgets?.length ?? 0) },
  ];
  return (
    <Card title="Dashboards" page
      actions={<Can need="user"><Link className="button primary" to="/dashboards/new">New dashboard</Link></Can>}>
      <ResourceTable<Dashboard> resource="dashboard" entityType="dashboard" columns={columns} caption="Dashboards" nameKey="title" searchHint="title, or key=value"
        link={(d) => `/dashboards/${encodeURIComponent(d.id)}`} defaultSort={{ f: "title", o: "asc" }} />
    </Card>
  );
}
