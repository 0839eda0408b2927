export { fraudCaseWorkflow } from './fraud-case.ts';
export { exportWindowWorkflow } from './export.ts';
