export { fraudCaseWorkflow } from './fraud-case.ts';
